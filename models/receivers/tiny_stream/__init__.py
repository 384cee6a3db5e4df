"""The embedded streaming receiver: the embedded x4 network with the flow-warped previous output as
one more input, causal, frame by frame on a CPU (``receiver.py``, weights in ``weights/``)."""
