"""Build an eval set from your own prompts: ask every tier, grade, write recorded outcomes.

``tiered-router collect`` is the command; these are its parts: the prompts
(``prompts``), a Converse client for Bedrock or the emulator (``bedrock``), grading
against gold answers or the top tier's answer (``grading``), the plan and its cost
estimate (``plan``), the resumable output file (``outcomes_file``) and the run
(``runner``). The output is the recorded-outcomes JSONL that ``eval``, ``calibrate``
and ``estimate`` read.
"""

from .bedrock import ConverseBackend, runtime_client
from .errors import CollectError, OutcomesFileError, PromptsError
from .grading import COMPARATORS, Grader, make_comparator
from .outcomes_file import OutcomesFile
from .plan import Plan, make_plan
from .prompts import PromptItem, prompts_from_records, read_prompts, sample_prompts
from .runner import CollectResult, run_plan

__all__ = ["ConverseBackend", "runtime_client", "CollectError", "OutcomesFileError", "PromptsError", "COMPARATORS",
           "Grader", "make_comparator", "OutcomesFile", "Plan", "make_plan", "PromptItem", "prompts_from_records",
           "read_prompts", "sample_prompts", "CollectResult", "run_plan"]
