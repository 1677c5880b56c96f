"""``POST /admin/api/{version}/graphql.json``: the stand-in's GraphQL Admin API endpoint,
after the version and token gate (and armed faults) of `shopify_app`, executed with
graphql-core against `shopify_graphql_schema`.

The request is ``{"query", "variables"?, "operationName"?}`` as JSON, or the bare document
with ``Content-Type: application/graphql`` (https://shopify.dev/docs/api/admin-graphql#endpoints).
Without a query the answer is Shopify's Rails refusal, 400 ``{"errors": {"query": "Required
parameter missing or invalid"}}``.

Answers are HTTP 200, as Shopify's GraphQL answers are
(https://shopify.dev/docs/api/admin-graphql#status_and_error_codes):

- a document that does not parse or validate, or variables that do not fit their types:
  ``{"errors": [{"message", "locations", ...}]}``, no ``data``, nothing charged (the
  messages are graphql-core's, the shape is the spec's and Shopify's);
- a requested cost the bucket cannot pay (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits):
  ``{"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation":
  "https://shopify.dev/api/usage/rate-limits"}}], "extensions": {"cost": {...,
  "actualQueryCost": null}}}``, no ``data``;
- otherwise ``{"data": ..., "extensions": {"cost": {"requestedQueryCost",
  "actualQueryCost", "throttleStatus": {"maximumAvailable", "currentlyAvailable",
  "restoreRate"}}}}``, with ``errors`` beside ``data`` when a field failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    execute_sync,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from connectors.standin.shopify import StandinShop
from connectors.standin.shopify_graphql_objects import root_value
from connectors.standin.shopify_graphql_schema import admin_schema, requested_cost
from connectors.standin.shopify_models import missing_parameter

THROTTLED_ERROR = {
    "message": "Throttled",
    "extensions": {
        "code": "THROTTLED",
        "documentation": "https://shopify.dev/api/usage/rate-limits",
    },
}


@dataclass(frozen=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any]
    operation_name: str | None


def graphql_request(body: Any, content_type: str) -> GraphQLRequest:
    """The request's parts, or Shopify's 400 for a missing ``query`` (or ``variables`` that
    are not an object)."""
    if content_type == "application/graphql":
        if not isinstance(body, str) or not body.strip():
            raise missing_parameter("query")
        return GraphQLRequest(body, {}, None)
    query = body.get("query") if isinstance(body, dict) else None
    if not isinstance(query, str) or not query.strip():
        raise missing_parameter("query")
    variables = body.get("variables")
    if isinstance(variables, str):  # some clients send the variables as a JSON string
        try:
            variables = json.loads(variables) if variables.strip() else None
        except ValueError:
            raise missing_parameter("variables") from None
    if variables is not None and not isinstance(variables, dict):
        raise missing_parameter("variables")
    name = body.get("operationName")
    return GraphQLRequest(query, variables or {}, name if isinstance(name, str) else None)


def graphql_answer(shop: StandinShop, body: Any, content_type: str) -> tuple[int, Any]:
    """The HTTP status and JSON for one GraphQL request (the gate already passed)."""
    request = graphql_request(body, content_type)
    schema = admin_schema()
    try:
        document = parse(request.query)
    except GraphQLError as error:
        return 200, {"errors": [error.formatted]}
    refused = validate(schema, document) or _operation_errors(document, request)
    if refused:
        return 200, {"errors": [error.formatted for error in refused]}
    operation = _operation(document, request.operation_name)
    assert operation is not None  # _operation_errors checked it
    cost = requested_cost(schema, operation, _fragments(document))
    now = shop.now()
    if not shop.graphql_bucket.take(cost, now):
        return 200, {"errors": [THROTTLED_ERROR], "extensions": _cost(shop, cost, None)}
    result = execute_sync(
        schema,
        document,
        root_value=root_value(shop),
        variable_values=request.variables,
        operation_name=request.operation_name,
    )
    answer: dict[str, Any] = {}
    if result.errors:
        answer["errors"] = [error.formatted for error in result.errors]
    answer["data"] = result.data
    answer["extensions"] = _cost(shop, cost, cost)
    return 200, answer


def _operation_errors(document: DocumentNode, request: GraphQLRequest) -> list[GraphQLError]:
    """Errors the spec reports before execution: no such operation, or variables that do not
    coerce to their declared types."""
    operation = _operation(document, request.operation_name)
    if operation is None:
        if request.operation_name is not None:
            return [GraphQLError(f"Unknown operation named '{request.operation_name}'.")]
        return [GraphQLError("Must provide operation name if query contains multiple operations.")]
    coerced = get_variable_values(
        admin_schema(), operation.variable_definitions or (), request.variables
    )
    return coerced if isinstance(coerced, list) else []


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name and op.name.value == name), None)


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def _cost(shop: StandinShop, requested: int, actual: int | None) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": shop.graphql_bucket.status(shop.now()),
        }
    }
