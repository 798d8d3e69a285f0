"""Training a built network (imports torch): the loop (``loop``: ``train``, ``evaluate``, the one accuracy loop),
BatchNorm statistics recomputed after it (``batchnorm``) and quantization-aware fine-tuning at the bits a network
deploys at (``qat``). Used by the ``train:E`` proxy and by ``nas export``; plain numbers in, plain records out."""
