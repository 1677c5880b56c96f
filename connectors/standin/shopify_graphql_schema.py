"""The part of Shopify's GraphQL Admin API (2025-01) the stand-in speaks, and what a request
costs.

The SDL is a subset of the 2025-01 Admin schema, with its type, field and argument names,
types, nullability and defaults as the reference documents them: the ``inventorySetQuantities``
mutation (https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/inventorySetQuantities)
with ``InventorySetQuantitiesInput``, ``InventoryQuantityInput``,
``InventorySetQuantitiesPayload``, ``InventoryAdjustmentGroup``, ``InventoryChange`` and
``InventorySetQuantitiesUserError`` (its code enum as of 2025-01), and a few query roots to
read what the mutation changes: ``shop``, ``location(id:)`` (the primary location without
an id), ``inventoryItem(id:)`` with ``inventoryLevel(locationId:)`` and
``quantities(names:)``. Fields the stand-in has no data for are left out rather than faked;
a query that asks for one is refused by validation, as Shopify refuses an unknown field.

Cost, as https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits describes it: a
field returning an object costs 1, a scalar or an enum 0, every mutation field 10; the cost
of a query is that of every field it selects (fragments counted where they are spread, each
branch of an interface or union counted, an over-estimate where the docs take the maximum).
No field of this subset is a connection, so nothing is multiplied by ``first``. The
stand-in reports the requested cost as the actual cost.
"""

from __future__ import annotations

import functools

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_schema,
    get_named_type,
    is_composite_type,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef

MUTATION_COST = 10
OBJECT_COST = 1

SDL = """
schema {
  query: QueryRoot
  mutation: Mutation
}

"An ISO-8601 encoded UTC date time string."
scalar DateTime

type QueryRoot {
  "Returns an InventoryItem object by InventoryItem ID."
  inventoryItem(id: ID!): InventoryItem
  "Returns an inventory Location resource by ID; the shop's primary location without one."
  location(id: ID): Location
  "Returns the Shop resource corresponding to the access token used in the request."
  shop: Shop!
}

type Mutation {
  "Set quantities of specified name using absolute values."
  inventorySetQuantities(input: InventorySetQuantitiesInput!): InventorySetQuantitiesPayload
}

type Shop {
  id: ID!
  myshopifyDomain: String!
  name: String!
}

type Location {
  id: ID!
  inventoryLevel(inventoryItemId: ID!): InventoryLevel
  isActive: Boolean!
  name: String!
}

type InventoryItem {
  id: ID!
  inventoryLevel(locationId: ID!): InventoryLevel
  sku: String
  tracked: Boolean!
}

type InventoryLevel {
  id: ID!
  item: InventoryItem!
  location: Location!
  quantities(names: [String!]!): [InventoryQuantity!]!
  updatedAt: DateTime!
}

type InventoryQuantity {
  id: ID!
  name: String!
  quantity: Int!
  updatedAt: DateTime
}

input InventorySetQuantitiesInput {
  ignoreCompareQuantity: Boolean = false
  name: String!
  quantities: [InventoryQuantityInput!]!
  reason: String!
  referenceDocumentUri: String
}

input InventoryQuantityInput {
  compareQuantity: Int
  inventoryItemId: ID!
  locationId: ID!
  quantity: Int!
}

type InventorySetQuantitiesPayload {
  inventoryAdjustmentGroup: InventoryAdjustmentGroup
  userErrors: [InventorySetQuantitiesUserError!]!
}

type InventoryAdjustmentGroup {
  changes(
    inventoryItemIds: [ID!]
    locationIds: [ID!]
    quantityNames: [String!]
  ): [InventoryChange!]!
  createdAt: DateTime!
  id: ID!
  reason: String!
  referenceDocumentUri: String
}

type InventoryChange {
  delta: Int!
  item: InventoryItem
  ledgerDocumentUri: String
  location: Location
  name: String!
  quantityAfterChange: Int
}

interface DisplayableError {
  field: [String!]
  message: String!
}

type InventorySetQuantitiesUserError implements DisplayableError {
  code: InventorySetQuantitiesUserErrorCode
  field: [String!]
  message: String!
}

enum InventorySetQuantitiesUserErrorCode {
  COMPARE_QUANTITY_REQUIRED
  COMPARE_QUANTITY_STALE
  INVALID_INVENTORY_ITEM
  INVALID_LOCATION
  INVALID_NAME
  INVALID_QUANTITY_NEGATIVE
  INVALID_QUANTITY_TOO_HIGH
  INVALID_QUANTITY_TOO_LOW
  INVALID_REASON
  INVALID_REFERENCE_DOCUMENT
  ITEM_NOT_STOCKED_AT_LOCATION
  NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR
  NON_MUTABLE_INVENTORY_ITEM
}
"""

Fragments = dict[str, FragmentDefinitionNode]


@functools.cache
def admin_schema() -> GraphQLSchema:
    """The schema, built once, on first use."""
    return build_schema(SDL)


def requested_cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: Fragments
) -> int:
    """What ``operation`` (already validated) asks to be charged."""
    if operation.operation == OperationType.MUTATION:
        fields = _fields(operation.selection_set, fragments)
        return MUTATION_COST * sum(1 for f in fields if not f.name.value.startswith("__"))
    root = schema.query_type
    return 0 if root is None else _selection_cost(schema, root, operation.selection_set, fragments)


def _fields(selection_set: SelectionSetNode, fragments: Fragments) -> list[FieldNode]:
    """The fields of a selection set, fragments spread."""
    found: list[FieldNode] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found.extend(_fields(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            found.extend(_fields(fragments[selection.name.value].selection_set, fragments))
    return found


def _selection_cost(
    schema: GraphQLSchema, parent: object, selection_set: SelectionSetNode, fragments: Fragments
) -> int:
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += _field_cost(schema, parent, selection, fragments)
            continue
        condition: NamedTypeNode | None
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            condition, inner = fragment.type_condition, fragment.selection_set
        elif isinstance(selection, InlineFragmentNode):
            condition, inner = selection.type_condition, selection.selection_set
        else:
            continue
        narrowed = schema.get_type(condition.name.value) if condition is not None else parent
        total += _selection_cost(schema, narrowed, inner, fragments)
    return total


def _field_cost(
    schema: GraphQLSchema, parent: object, node: FieldNode, fragments: Fragments
) -> int:
    definition = _field_definition(schema, parent, node.name.value)
    if definition is None:
        return 0
    returned = get_named_type(definition.type)
    if not is_composite_type(returned) or node.selection_set is None:
        return 0
    return OBJECT_COST + _selection_cost(schema, returned, node.selection_set, fragments)


def _field_definition(schema: GraphQLSchema, parent: object, name: str) -> GraphQLField | None:
    if name == "__typename":
        return TypeNameMetaFieldDef
    if parent is schema.query_type and name in ("__schema", "__type"):
        return SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        field: GraphQLField | None = parent.fields.get(name)
        return field
    return None
