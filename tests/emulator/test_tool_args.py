"""Tool-argument synthesis and tool-mention detection (pure functions)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from langchain_tiered_router.emulator._tool_args import mentioned_tool, synthesise_arguments


class Address(BaseModel):
    street: str
    number: int


class Order(BaseModel):
    customer: str
    quantity: int = Field(gt=0, lt=10)
    price: float
    express: bool
    size: str = Field(json_schema_extra={"enum": ["S", "M"]})
    tags: list[str]
    address: Address
    note: str | None = None


def test_schema_filled_from_the_message() -> None:
    schema = Order.model_json_schema()
    args = synthesise_arguments(schema, "Order for 'Zoë Ltd': 3 items at 4.5 to 'Main St' 12, what's next?")
    assert args == {"customer": "Zoë Ltd", "quantity": 3, "price": 4.5, "express": True, "size": "S",
                    "tags": ["Main St"], "address": {"street": "example street", "number": 12}}
    Order.model_validate(args)
    assert synthesise_arguments(schema, "30 please")["quantity"] == 9  # kept inside lt=10


def test_no_required_list_fills_every_property() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": ["string", "null"]}}}
    assert synthesise_arguments(schema, "no numbers here") == {"a": 1, "b": "example b"}


def test_mentions() -> None:
    names = ["magic_function", "magic_function_no_args", "get_weather", "my_adder_tool"]
    assert mentioned_tool(names, "call magic_function_no_args()") == "magic_function_no_args"
    assert mentioned_tool(names, "What is the weather in Paris?") == "get_weather"
    assert mentioned_tool(names, "What is 1 + 2") is None
