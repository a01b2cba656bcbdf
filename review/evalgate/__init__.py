"""spanguard.review.evalgate: ``spanguard gate``, the CI gate that runs a target on reviewed eval cases and blocks a
change that brings a fixed failure back. The case format and the gate's behaviour: docs/datasets.md."""
