"""HyperPod Managed Tiered Checkpointing's in-memory API, served from our memory tier.

HyperPod training scripts checkpoint with AWS's ``amzn-sagemaker-checkpointing`` library, whose
``InMemoryCheckpointClient`` talks HTTP to a per-cluster service (``/v1/cp/namespaces/{ns}``,
``/v1/cp/checkpoints/{ns}/{rank}/{step}``, ``/v1/cp/checkpoints/{ns}/latest``,
``/v1/cp/cluster/reset``). This package answers that API so those scripts run unchanged, and
keeps every shard in the same node-local shared-memory tier `trainguard.checkpoint` writes
(`trainguard.checkpoint.blobring.BlobRing`, what `MemoryTier` is built on: slots, commit by meta
rename, retention, checksums) — one tier, two front doors. Nothing here imports torch, so a
server per node stays cheap. Modules, one concept each:

- `limits`: sizes and ranges every input is checked against (4xx naming the field);
- `shardmeta`: the ``Shard-Meta`` header (xxh3-128, base64) the client sends and verifies;
- `namespaces`: namespace configs (rank count, steps retained), persisted beside the shards;
- `shards`: the shard store over `MemoryTier`, with memory accounting;
- `peers`: replication to, and reads from, the other nodes' servers;
- `discovery`: the other servers found by resolving a name (the chart's headless Service);
- `service`: the API's operations across this node and its peers;
- `routes`, `proxyform`, `metrics`, `server`: the HTTP edge.
"""
