"""tickpath's one home for NATS: what the JetStream sink, ``tickpath ingest`` and busbench share.

- :mod:`~tickpath.nats.url`: ``nats://``/``tls://`` URLs and credentials, the one parser;
- :mod:`~tickpath.nats.frames`: protocol frames as pure functions (HPUB out, JetStream acks in);
- :mod:`~tickpath.nats.provision`: JetStream stream provisioning and name rules;
- :mod:`~tickpath.nats.client`: connecting with nats-py (quick failure at start, reconnects after);
- :mod:`~tickpath.nats.internals`: the only module that touches nats-py's private attributes (the
  fast parsers and the write buffer), each checked against the pinned nats-py before first use;
- :mod:`~tickpath.nats.publisher`: publishing with acks, an in-flight window, a spool and an ack
  timer, on an injected clock.

Inside this package ``import nats`` is nats-py (imports are absolute); nats-py is imported lazily,
so :mod:`~tickpath.nats.url` and :mod:`~tickpath.nats.frames` work without it.
"""
