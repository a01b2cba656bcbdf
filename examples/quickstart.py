"""The README's quickstart as a program: one chat call, instrumented, inside a session.

Against a real provider: ``OPENAI_API_KEY=sk-... python examples/quickstart.py``. Against the fake provider, with
the span printed instead of sent: ``OTEL_TRACES_EXPORTER=console python examples/fake_provider.py --run
examples/quickstart.py``.
"""

import openai

import spanguard

spanguard.instrument()  # the one line: every OpenAI / Anthropic SDK call is now a span

client = openai.OpenAI()  # OPENAI_API_KEY (and OPENAI_BASE_URL, if set) from the environment
with spanguard.session(id="conv-42", user_id="user-7"), spanguard.agent("support"):
    reply = client.chat.completions.create(
        model="gpt-4o-2024-08-06",
        messages=[{"role": "user", "content": "Where is my parcel?"}],
    )
print(reply.choices[0].message.content)
