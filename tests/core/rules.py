"""Business-rule callables referenced by test configs."""


def explode_on_cheap(question: str, answer: str):
    if answer.startswith("cheap"):
        raise RuntimeError(f"rule blew up on {answer!r}")
    return True, "fine"
