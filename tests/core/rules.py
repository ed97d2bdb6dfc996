"""Business-rule callables referenced by test configs."""


def explode_on_cheap(question: str, answer: str):
    if answer.startswith("cheap"):
        raise RuntimeError(f"rule blew up on {answer!r}")
    return True, "fine"


def sleepy(question: str, answer: str):
    """A rule stuck on a slow service: sleeps 5 s, then passes."""
    import time

    time.sleep(5)
    return True


def says_no(question: str, answer: str):
    return "no"  # truthy, but not a judgement




def verdict_says_no(question: str, answer: str):
    from langchain_tiered_router.core.types import GateVerdict

    return GateVerdict(passed="no", reason="rejected")  # truthy, but not a bool


def verdict_without_reason(question: str, answer: str):
    from langchain_tiered_router.core.types import GateVerdict

    return GateVerdict(False, reason=None)  # type: ignore[arg-type]


def verdict_with_numeric_detail(question: str, answer: str):
    from langchain_tiered_router.core.types import GateVerdict

    return GateVerdict(True, reason="fine", detail=3)  # type: ignore[arg-type]


def judges_the_answer_alone(answer: str):
    return "ok" in answer


def judges_with_options(question: str, answer: str, *, strict: bool = False, **context):
    return bool(answer)


async def judged_asynchronously(question: str, answer: str):
    return True


class AsyncCheck:
    async def __call__(self, question: str, answer: str):
        return True


async_check = AsyncCheck()
