"""Real base models (SmolLM2-135M-Instruct, local Hugging Face checkpoints) and their 1-shot prompts.

Shared by the LM experiments (``lm_inference``, ``lm_sft``, ``lm_rlhf``), so that every one
accepts ``--set smollm2=true`` or ``--set model_dir=DIR`` (a local GPT-2 / Llama / Qwen2
checkpoint) and ``--set data_file=FILE data_format=gsm8k|math`` (local JSONL) with the same
prompts.

Prompts: a 1-shot demonstration fixes the ``Answer: X`` format. Models whose tokenizer has a
ChatML template (``kind == "chat"``, SmolLM2) get a two-turn chat, each user turn ending in
:data:`INSTRUCTION`; others (``"plain"``) get ``Q: <demo>\\n<solution>\\n\\nQ: <question>\\n``.

Tasks: ``gym:<name>`` for each reasoning-gym task in ``gym_tasks`` (settings
:data:`GYM_CONFIGS`, demonstration :data:`GYM_DEMOS` or the dataset's own item drawn with
``seed + DEMO_SEED_OFFSET``), and ``data_format`` read from ``data_file`` (record 0 is the
demonstration; the prompts are the records after it, in file order).

Held-out splits: :func:`real_tasks` draws ``num_prompts`` examples with ``seed`` after skipping
``offset`` of them and every example whose question is in ``exclude``. Evaluation uses
``offset = 0`` (the ``lm_inference`` prompts); training prompts use another seed, an offset past
the eval prompts and ``exclude`` = the eval questions, so the two sets are disjoint even when a
small task repeats questions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from sharpen.lm.config import LMConfig
from sharpen.tasks import GSM8KTask, MATHTask, Task, get_task
from sharpen.tasks.jsonl import read_jsonl

SMOLLM2 = "SmolLM2-135M"
DATA_FORMATS = ("gsm8k", "math")
#: reasoning-gym settings used for the real models (small numbers keep SmolLM2's pass@N well
#: above greedy).
GYM_CONFIGS: dict[str, dict[str, Any]] = {
    "basic_arithmetic": {
        "min_terms": 2,
        "max_terms": 2,
        "min_digits": 1,
        "max_digits": 1,
        "operators": ("+", "-"),
        "allow_parentheses": False,
        "allow_negation": False,
    },
    "chain_sum": {
        "min_terms": 2,
        "max_terms": 3,
        "min_digits": 1,
        "max_digits": 1,
        "allow_negation": False,
    },
}
#: Hand-written 1-shot demonstrations (question, chain-of-thought + ``Answer:`` line); other
#: gym tasks use the dataset's own answer (and chain-of-thought, when it has one).
GYM_DEMOS: dict[str, tuple[str, str]] = {
    "basic_arithmetic": ("Calculate 7 + 5.", "7 + 5 = 12\nAnswer: 12"),
    "chain_sum": (
        "State the final answer to the following arithmetic problem: 12 + 35 - 8 =",
        "12 + 35 = 47\n47 - 8 = 39\nAnswer: 39",
    ),
    "syllogism": (
        "Consider these statements:\n1. All dogs are mammals\n2. No mammals are fish\n\n"
        "Does it logically follow that:\nNo dogs are fish?\n(Answer Yes or No)",
        "Every dog is a mammal and no mammal is a fish, so no dog is a fish.\nAnswer: Yes",
    ),
}
INSTRUCTION = "Think briefly, then give the final answer on the last line as 'Answer: <answer>'."
DEMO_SEED_OFFSET = 10_000  # the dataset demonstration of a gym task without a hand-written one
TRAIN_SEED_OFFSET = 7919  # training prompts: gym draw seed + this (lm_sft, lm_rlhf)


class Model(NamedTuple):
    """A base model ready for sampling: ``kind`` is ``"char"``, ``"chat"`` or ``"plain"``."""

    name: str
    lm_cfg: LMConfig
    params: Any
    tokenizer: Any
    kind: str


class RealTask(NamedTuple):
    """The examples of one task and their prompt texts (1-shot, in the model's format)."""

    task_name: str
    task: Task
    examples: list
    prompts: list[str]


def prompt_kind(tok) -> str:
    """``"chat"`` when the tokenizer's chat template is ChatML, else ``"plain"``."""
    template = getattr(tok, "chat_template", None) or ""
    return "chat" if "<|im_start|>" in template else "plain"


def load_hf_model(model_dir: str | Path) -> Model:
    """A local Hugging Face checkpoint directory as a :class:`Model` (name = folder name).

    Raises:
      FileNotFoundError: when ``model_dir`` is not a directory.
    """
    from sharpen.lm.checkpoint import check_vocab, load_hf_checkpoint, load_tokenizer

    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"model_dir not found: {model_dir}")
    lm_cfg, params = load_hf_checkpoint(path)
    tok = load_tokenizer(path)
    check_vocab(tok, lm_cfg)
    return Model(path.name, lm_cfg, params, tok, prompt_kind(tok))


def load_smollm2_model() -> Model:
    """SmolLM2-135M-Instruct (:func:`sharpen.lm.gguf_import.load_smollm2`) as a chat :class:`Model`."""
    from sharpen.lm.gguf_import import load_smollm2

    lm_cfg, params, tok = load_smollm2()
    return Model(SMOLLM2, lm_cfg, params, tok, "chat")


def load_real_model(*, smollm2: bool, model_dir: str) -> Model:
    """The one real base model of an experiment: ``model_dir`` if set, else SmolLM2."""
    if model_dir:
        return load_hf_model(model_dir)
    if not smollm2:
        raise ValueError("no real base model: set smollm2 or model_dir")
    return load_smollm2_model()


def gym_task(name: str) -> Task:
    """The reasoning-gym task ``name`` with :data:`GYM_CONFIGS` settings (ValueError if unknown).

    Answers are read with ``flexible=True`` (:class:`~sharpen.tasks.gym.GymTask`): a response
    without an ``Answer:`` line is graded by its last number, as lm-evaluation-harness's
    "flexible-extract" does for GSM8K; SmolLM2-135M often stops after ``7 + 5 = 12``.
    """
    return get_task(f"gym:{name}", flexible=True, **GYM_CONFIGS.get(name, {}))


def chat_prompt(tok, demo: tuple[str, str], question: str) -> str:
    """The ChatML text of a 1-shot conversation: demo question, demo answer, ``question``."""

    def ask(text):
        return {"role": "user", "content": f"{text}\n{INSTRUCTION}"}

    messages = [ask(demo[0]), {"role": "assistant", "content": demo[1]}, ask(question)]
    return tok.chat_prompt(messages)


def plain_prompt(demo: tuple[str, str], question: str) -> str:
    """The plain 1-shot text ``Q: <demo>\\n<solution>\\n\\nQ: <question>\\n``."""
    return f"Q: {demo[0]}\n{demo[1]}\n\nQ: {question}\n"


def format_prompts(model: Model, demo: tuple[str, str], examples: Sequence) -> list[str]:
    """The prompt text of every example in ``model``'s format (chat or plain)."""
    if model.kind == "chat":
        return [chat_prompt(model.tokenizer, demo, e.prompt) for e in examples]
    return [plain_prompt(demo, e.prompt) for e in examples]


def check_real_inputs(
    *, model_dir: str = "", data_file: str = "", data_format: str = "gsm8k", gym_tasks=()
) -> None:
    """Fail early on a missing ``model_dir`` / ``data_file`` or an unknown format / gym task.

    Raises:
      FileNotFoundError: naming the missing ``model_dir`` or ``data_file``.
      ValueError: naming ``data_format`` or the unknown reasoning-gym task.
    """
    if model_dir and not Path(model_dir).is_dir():
        raise FileNotFoundError(f"model_dir not found: {model_dir}")
    if data_file and not Path(data_file).is_file():
        raise FileNotFoundError(f"data_file not found: {data_file}")
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {DATA_FORMATS}, got {data_format!r}")
    for name in gym_tasks:
        gym_task(name)


def _draw(pool: Sequence, n: int, offset: int, exclude: Collection[str], distinct: bool) -> list:
    out, seen = [], set(exclude)
    for e in pool[offset:]:
        if e.prompt not in seen:
            out.append(e)
            if distinct:
                seen.add(e.prompt)
    return out[:n]


def real_tasks(
    model: Model,
    *,
    gym_tasks: Sequence[str] = (),
    data_file: str = "",
    data_format: str = "gsm8k",
    num_prompts: int,
    seed: int = 0,
    offset: int = 0,
    exclude: Mapping[str, Collection[str]] | None = None,
    distinct: bool = False,
) -> list[RealTask]:
    """The gym tasks and the data file of a real model: examples and 1-shot prompt texts.

    Args:
      model: the model (its ``kind`` and tokenizer pick the prompt format).
      gym_tasks: reasoning-gym task names (task ``gym:<name>``).
      data_file: local JSONL (``data_format`` records); ``""`` for none.
      data_format: ``"gsm8k"`` or ``"math"`` (also the task name).
      num_prompts: examples per task: exactly this many for gym tasks; at most this many for
        the data file (fewer when it runs out).
      seed: the gym draw (``task.examples(..., seed=seed)``; data files are read in order).
      offset: examples skipped at the start (data file: after the demonstration record).
      exclude: per task name, questions never returned (a disjoint training split).
      distinct: return each question at most once (small gym tasks repeat questions).

    Returns:
      One :class:`RealTask` per gym task, then the data file's.

    Raises:
      ValueError: a data file with fewer than 2 records, or a gym task that cannot give
        ``num_prompts`` questions outside ``exclude``.
    """
    exclude = exclude or {}
    specs: list[tuple[str, Task, tuple[str, str], list]] = []
    for name in gym_tasks:
        task_name = f"gym:{name}"
        task = gym_task(name)
        if name in GYM_DEMOS:
            demo = GYM_DEMOS[name]
        else:
            shot = task.examples(1, seed=seed + DEMO_SEED_OFFSET)[0]
            demo = (shot.prompt, task.solution(shot))
        held = exclude.get(task_name, ())
        extra = 4 * (len(held) + num_prompts) if (held or distinct) else 0
        pool = task.examples(offset + num_prompts + extra, seed=seed)
        examples = _draw(pool, num_prompts, offset, held, distinct)
        if len(examples) < num_prompts:
            raise ValueError(
                f"{task_name}: only {len(examples)} of {num_prompts} prompts outside the "
                f"{len(held)} excluded questions (too few distinct questions)"
            )
        specs.append((task_name, task, demo, examples))
    if data_file:
        task = (GSM8KTask if data_format == "gsm8k" else MATHTask)(data_file)
        required = ("question", "answer") if data_format == "gsm8k" else ("problem", "solution")
        available = len(read_jsonl(data_file, required))
        if available < 2:
            raise ValueError(f"data_file {data_file} needs >= 2 records (1 demonstration)")
        held = exclude.get(data_format, ())
        count = available if (held or distinct) else min(offset + num_prompts + 1, available)
        shot, *pool = task.examples(count, seed=0)
        examples = _draw(pool, num_prompts, offset, held, distinct)
        specs.append((data_format, task, (shot.prompt, task.solution(shot)), examples))
    return [
        RealTask(name, task, examples, format_prompts(model, demo, examples))
        for name, task, demo, examples in specs
    ]


def real_splits(
    model: Model,
    *,
    gym_tasks: Sequence[str] = (),
    data_file: str = "",
    data_format: str = "gsm8k",
    num_eval: int,
    num_train: int,
    seed: int = 0,
) -> list[tuple[RealTask, RealTask]]:
    """Held-out ``(eval, train)`` prompts of every task of a real model, disjoint by question.

    Eval: the first ``num_eval`` examples (gym draw ``seed``, the ``lm_inference`` prompts; data
    file: the records after the demonstration). Train: ``num_train`` distinct examples drawn with
    ``seed + TRAIN_SEED_OFFSET`` after skipping ``num_eval``, every eval question excluded.

    Raises:
      ValueError: naming ``num_eval`` / ``num_train`` when the data file is too short.
    """
    common = {"gym_tasks": gym_tasks, "data_file": data_file, "data_format": data_format}
    evals = real_tasks(model, **common, num_prompts=num_eval, seed=seed)
    trains = real_tasks(
        model,
        **common,
        num_prompts=num_train,
        seed=seed + TRAIN_SEED_OFFSET,
        offset=num_eval,
        exclude={t.task_name: {e.prompt for e in t.examples} for t in evals},
        distinct=True,
    )
    for ev, tr in zip(evals, trains, strict=True):
        for field, t, want in (("num_eval", ev, num_eval), ("num_train", tr, num_train)):
            if len(t.examples) < want:
                raise ValueError(
                    f"{t.task_name}: data_file {data_file} leaves {len(t.examples)} prompts for "
                    f"{field}={want} (1 demonstration, then eval, then distinct training records)"
                )
    return list(zip(evals, trains, strict=True))


def encode_prompts(tok, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of every prompt, BOS first when the tokenizer has one."""
    head = [] if tok.bos_id is None else [tok.bos_id]
    return [head + list(tok.encode(p)) for p in prompts]
