"""What DynamoDB bills each call, worked out from the items moto holds before and after it.

On-demand capacity, as AWS documents it: a write is 1 write request unit (WRU) per started KB of the
larger of the item before and after it, twice that inside a transaction; every global secondary index
whose entry the write adds, changes or removes is written too, at the size of its projected entry (a
change of the index's key is a delete and a put); a write that changes nothing an index projects costs
the index nothing. A read is 1 read request unit (RRU) per started 4 KB, half that when eventually
consistent (always on an index), twice that in a transaction; a Query is billed on the total size of the
entries it reads, not on what its projection expression returns. A table with a stream gets one stream
record per item changed. Item sizes are moto's: attribute names plus values, numbers by their digits.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


@dataclass
class Units:
    """One call's bill: request units by kind, and where they went."""

    write_units: float = 0.0
    index_write_units: float = 0.0
    read_units: float = 0.0
    stream_records: int = 0
    # For the report: the largest item the call touched, in bytes.
    largest_item_bytes: int = 0
    detail: dict[str, float] = field(default_factory=dict)


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def _size(item: Item | None) -> int:
    return item.size() if item is not None else 0


class Capacity:
    """Reads moto's backend for the account and region the local stack uses."""

    def __init__(self, account_id: str, region: str) -> None:
        self._account_id = account_id
        self._region = region

    def _table(self, name: str) -> Table | None:
        backend = dynamodb_backends[self._account_id][self._region]
        tables: dict[str, Table] = backend.tables
        return tables.get(name)

    def _stored(self, table: Table, attributes: dict[str, Any]) -> Item | None:
        hash_value = attributes.get(table.hash_key_attr)
        if hash_value is None:
            return None
        range_value = attributes.get(table.range_key_attr) if table.range_key_attr else None
        if table.range_key_attr and range_value is None:
            return None
        found = table.get_item(DynamoType(hash_value), DynamoType(range_value) if range_value else None)
        return copy.deepcopy(found) if found is not None else None

    # -- writes -----------------------------------------------------------------------------------

    def _targets(self, operation: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
        """(table, key attributes, unit multiplier) of every item a write touches."""
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            return [(body.get("TableName", ""), body.get("Item") or body.get("Key") or {}, 1)]
        if operation == "TransactWriteItems":
            targets = []
            for entry in body.get("TransactItems") or []:
                action = next(iter(entry.values()))
                targets.append(
                    (action.get("TableName", ""), action.get("Item") or action.get("Key") or {}, 2)
                )
            return targets
        if operation == "BatchWriteItem":
            targets = []
            for table, requests in (body.get("RequestItems") or {}).items():
                for request in requests:
                    action = request.get("PutRequest") or request.get("DeleteRequest") or {}
                    targets.append((table, action.get("Item") or action.get("Key") or {}, 1))
            return targets
        return []

    def before_write(
        self, operation: str, body: dict[str, Any]
    ) -> list[tuple[Table, Item | None, dict[str, Any], int]]:
        snapshot = []
        for name, key, multiplier in self._targets(operation, body):
            table = self._table(name)
            if table is not None:
                snapshot.append((table, self._stored(table, key), key, multiplier))
        return snapshot

    def after_write(self, snapshot: list[tuple[Table, Item | None, dict[str, Any], int]]) -> Units:
        units = Units()
        for table, before, key, multiplier in snapshot:
            after = self._stored(table, key)
            size = max(_size(before), _size(after))
            units.largest_item_bytes = max(units.largest_item_bytes, size)
            units.write_units += write_units(size) * multiplier
            for index in table.global_indexes:
                units.index_write_units += _index_write_units(index, before, after)
            changed = (before.to_json() if before else None) != (after.to_json() if after else None)
            if changed and (table.stream_specification or {}).get("StreamEnabled"):
                units.stream_records += 1
        return units

    # -- reads ------------------------------------------------------------------------------------

    def reads(self, operation: str, body: dict[str, Any], response: dict[str, Any]) -> Units:
        units = Units()
        consistent = bool(body.get("ConsistentRead"))
        if operation == "GetItem":
            table = self._table(body.get("TableName", ""))
            item = self._stored(table, body.get("Key") or {}) if table else None
            units.read_units = read_units(_size(item), consistent)
            units.largest_item_bytes = _size(item)
        elif operation in ("Query", "Scan"):
            table = self._table(body.get("TableName", ""))
            index_name = body.get("IndexName")
            total = 0
            for returned in response.get("Items") or []:
                total += self._entry_size(table, index_name, returned)
            units.read_units = read_units(total, consistent and not index_name)
        elif operation == "BatchGetItem":
            for name, request in (body.get("RequestItems") or {}).items():
                table = self._table(name)
                batch_consistent = bool(request.get("ConsistentRead"))
                for key in request.get("Keys") or []:
                    item = self._stored(table, key) if table else None
                    units.read_units += read_units(_size(item), batch_consistent)
        elif operation == "TransactGetItems":
            for entry in body.get("TransactItems") or []:
                action = entry.get("Get") or {}
                table = self._table(action.get("TableName", ""))
                item = self._stored(table, action.get("Key") or {}) if table else None
                units.read_units += 2 * read_units(_size(item), True)
        return units

    def _entry_size(self, table: Table | None, index_name: str | None, returned: dict[str, Any]) -> int:
        """The stored entry behind a returned item; the returned item itself when its keys were
        projected away (a lower bound, exact whenever the whole result is under 4 KB)."""
        returned_size = Item(None, None, returned).size()  # type: ignore[arg-type]
        if table is None:
            return returned_size
        stored = self._stored(table, returned)
        if stored is None:
            return returned_size
        if index_name:
            for index in table.global_indexes:
                if index.name == index_name:
                    return int(index.project(stored).size())
        return _size(stored)


def _index_entry(index: Any, item: Item | None) -> Item | None:
    if item is None or not all(attr in item.attrs for attr in index.schema_key_attrs):
        return None
    projected: Item = index.project(item)
    return projected


def _index_write_units(index: Any, before: Item | None, after: Item | None) -> int:
    old, new = _index_entry(index, before), _index_entry(index, after)
    if old is None and new is None:
        return 0
    if old is None:
        return write_units(_size(new))
    if new is None:
        return write_units(_size(old))
    if old.to_json() == new.to_json():
        return 0
    key_changed = any(before.attrs.get(a) != after.attrs.get(a) for a in index.schema_key_attrs)  # type: ignore[union-attr]
    if key_changed:
        return write_units(_size(old)) + write_units(_size(new))
    return write_units(max(_size(old), _size(new)))


def response_json(chunks: Iterable[bytes]) -> dict[str, Any]:
    try:
        parsed = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
