"""The operator's and the vendor's documents name what the code really has: every
setting in deploy/vir.env.example, every endpoint in docs/api.md, and only log
events that exist in docs/operations.md's alerts."""

from __future__ import annotations

import re
from pathlib import Path

from vir import logs
from vir.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_the_environment_example() -> None:
    example = (ROOT / "deploy" / "vir.env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#?\s*(VIR_[A-Z0-9_]+)=", example, re.MULTILINE))
    settings = {f"VIR_{name.upper()}" for name in Settings.model_fields}
    # VIR_PORT is per instance (vir@PORT), which the example explains instead.
    assert settings - named - {"VIR_PORT"} == set(), "settings missing from vir.env.example"
    assert named - settings - {"VIR_PORT"} == set(), "vir.env.example names unknown settings"


def test_every_keyholder_setting_is_in_its_environment_example() -> None:
    from vir.keyholder.settings import KeyholderSettings

    example = (ROOT / "deploy" / "keyholder.env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#?\s*(VIR_[A-Z0-9_]+)=", example, re.MULTILINE))
    settings = {
        f"VIR_{name.upper()}" if name.startswith("pkcs11") else f"VIR_KEYHOLDER_{name.upper()}"
        for name in KeyholderSettings.model_fields
    }
    assert settings - named == set(), "settings missing from keyholder.env.example"
    assert named - settings == set(), "keyholder.env.example names unknown settings"


def test_every_endpoint_is_in_the_api_document(tmp_path: Path) -> None:
    from support.inapp import in_app

    with in_app(tmp_path) as app:
        paths = app.app.openapi()["paths"]
    # The served document is what a vendor sees: every operation in it is listed.
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert len(routes) > 10, routes  # the walk found the API, not an empty list
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    listed = {
        (method, path)
        for methods, path in re.findall(r"^\| `((?:[A-Z]+ )+)(/[^ `?]*)", text, re.MULTILINE)
        for method in methods.split()
    }
    missing = sorted(routes - listed)
    assert missing == [], f"endpoints missing from docs/api.md: {missing}"


def test_operations_alerts_name_real_log_events() -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    alerts = [line for line in text.splitlines() if "alert on" in line]
    assert alerts
    section = text[text.index(alerts[0]) :].split("\n- ", 1)[0]
    named = set(re.findall(r"`([a-z]+\.[a-z_]+)`", section))
    # Besides events, the alerts name periodic jobs (a job.failed line's "job" field).
    sources = ("vir/api/app.py", "vir/api/lifespan.py", "vir/keyholder/app.py")
    source = "".join((ROOT / name).read_text(encoding="utf-8") for name in sources)
    jobs = set(re.findall(r'(?:Periodic|Once)\(\s*"([a-z._]+)"', source))
    assert {"audit.checkpoint", "lifecycle.run", "epochs.retire"} <= jobs, jobs
    unknown = named - set(logs.CATALOGUE) - jobs
    assert named & set(logs.CATALOGUE) and unknown == set(), unknown


def test_operations_incidents_name_real_log_events() -> None:
    """The incidents once named ``audit.checkpoint_refused``, which vir never logs: an
    operator grepping for it would find nothing while the log said ``job.refused``."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Incidents\n") :].split("\n## ", 2)[1]
    named = set(re.findall(r"`([a-z]+\.[a-z_]+)`", section))
    source = "".join(
        (ROOT / name).read_text(encoding="utf-8")
        for name in ("vir/api/app.py", "vir/api/lifespan.py", "vir/keyholder/app.py")
    )
    jobs = set(re.findall(r'(?:Periodic|Once)\(\s*"([a-z._]+)"', source))
    assert "job.refused" in named
    assert named - set(logs.CATALOGUE) - jobs == set()


def test_the_hsm_steps_agree_with_the_key_holders_example_and_keep_their_order() -> None:
    """docs/operations.md, "Moving the key holder to an HSM": the token it creates and the
    VIR_PKCS11_* it sets are those of deploy/keyholder.env.example (the docs said token
    ``vir``, the example ``vir-keyholder``), and the verifier key is written down before
    VIR_PKCS11_* are set and compared after the import (with them set, ``vir keyholder
    key`` refuses a checkpoint key that is still a file, so "the same line before and
    after" could not be checked in the order the steps were given)."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text[text.index("### Moving the key holder to an HSM") : text.index("## Configure")]
    commands = "\n".join(re.findall(r"```sh\n(.*?)```", section, re.DOTALL))
    example = (ROOT / "deploy" / "keyholder.env.example").read_text(encoding="utf-8")
    exampled = dict(re.findall(r"^#?(VIR_PKCS11_[A-Z_]+)=(\S+)$", example, re.MULTILINE))
    documented = dict(re.findall(r"#\s+(VIR_PKCS11_[A-Z_]+)=(\S+)", commands))
    assert len(exampled) == 3 and documented == exampled
    created = re.search(r"softhsm2-util --init-token --free --label (\S+)", commands)
    assert created is not None and created[1] == exampled["VIR_PKCS11_TOKEN"]
    assert re.search(
        r"install .*-m 0600 .* " + re.escape(exampled["VIR_PKCS11_PIN_FILE"]), commands
    )
    steps = [
        commands.index("vir-keyholder-admin key >"),  # written down, from the file
        commands.index("VIR_PKCS11_MODULE="),
        commands.index("vir-keyholder-admin hsm-import"),
        commands.index("vir-keyholder-admin key |"),  # compared, from the token
        commands.index("systemctl start vir-keyholder"),
    ]
    assert steps == sorted(steps)
