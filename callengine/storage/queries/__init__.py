"""The SQLite Store's queries, one module per area of the schema, each a mixin over StoreBase
(storage/base.py) that storage/store.py composes into `Store`."""
