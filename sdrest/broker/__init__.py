"""Scale-out through Redis: the API node's :class:`~sdrest.broker.dispatcher.Dispatcher` hands jobs to workers on
other hosts (``sdrest worker``), which reach it through :class:`~sdrest.broker.remote.RemoteQueue`.

Nothing here is imported unless a broker is configured: the embedded default stays SQLite and threads.
The API node's SQLite is the record of truth (queue order, owners, fairness, attempts); Redis holds only the
work in flight. docs/scaling.md says what is guaranteed and how it fails.
"""
