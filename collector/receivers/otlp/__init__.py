"""The ``otlp`` receiver: OTLP/gRPC and OTLP/HTTP (protobuf and JSON) for traces. See docs/collector-config.md.

``config.py`` holds its settings, ``factory.py`` its factory, ``receiver.py`` the servers, ``otlp_json.py`` the
OTLP/JSON encoding.
"""
