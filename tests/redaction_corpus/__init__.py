"""An independent leak corpus for spanguard's redaction: values, where they are planted, and how arrival is detected.

Built from what the data kinds look like in the world (Faker providers, vendors' documented token formats, how
people write in chat), never from spanguard's recognizers. Used by ``test_no_leaks.py`` and
``bench/redaction_leaks.py``.
"""
