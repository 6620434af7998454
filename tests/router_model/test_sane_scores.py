"""For any text the bundled router predicts a finite quality in [0, 1] for every profile (issue 28, item 3)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EMOJI = "😀🎉🔥👍🏽🤖🧠🌍🇯🇵❤️‍🔥"
EXTREMES = st.sampled_from(
    [
        "",
        "a",
        " ",
        "\n\n\n",
        "x" * 200_000,
        "1234567890" * 20_000,
        EMOJI * 2_000,
        "日本語のテキスト。" * 5_000,
        "مرحبا بالعالم " * 3_000,
        "\x00\x01\x02",
        "```\n" * 10_000,
    ]
)
SCRIPTS = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Z")), min_size=0, max_size=3_000
)
DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=5_000)
ONLY_EMOJI = st.text(alphabet=EMOJI, min_size=1, max_size=2_000)
REPEATED = st.builds(lambda unit, n: unit * n, st.text(min_size=1, max_size=8), st.integers(1, 25_000))
TEXTS = st.one_of(EXTREMES, SCRIPTS, DIGITS, ONLY_EMOJI, REPEATED)


@settings(max_examples=220, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TEXTS)
def test_every_predicted_quality_is_finite_and_in_the_unit_interval(router, text):
    vector = router.vectorize([text])[0]
    assert np.isfinite(vector.features).all() and np.isfinite(vector.embedding).all()
    quality = router.quality([vector])[0]
    assert quality.shape == (len(router.profiles),)
    assert np.isfinite(quality).all() and (quality >= 0).all() and (quality <= 1).all()
    assert np.isfinite(router.estimated_cost([text])).all()
