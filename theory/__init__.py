"""Theory side of `sharpen`: closed-form rates (:mod:`theory.bounds`) and hard instances."""
