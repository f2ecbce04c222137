"""Settings loading: ranges, strict booleans, precedence, sources, one-line errors, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from ayb_jobs.config import (
    Settings,
    all_keys,
    data_dir,
    load_settings,
    parse_listen,
    redact_dsn,
    settings_report,
)
from ayb_jobs.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

RANGES = [
    ("database", "pool_max_size", 2, 100),
    ("database", "statement_cache_size", 0, 10000),
    ("jobs", "worker_concurrency", 1, 1024),
    ("jobs", "poll_interval_ms", 100, 60000),
    ("jobs", "lease_duration_s", 30, 3600),
    ("jobs", "max_retries_default", 1, 100),
    ("jobs", "scheduler_tick_s", 5, 3600),
    ("jobs", "job_timeout_s", 1, 86400),
    ("jobs", "shutdown_timeout_s", 0, 3600),
    ("jobs", "recovery_interval_s", 5, 3600),
]
BOOLEANS = [
    ("database", "auto_migrate"),
    ("jobs", "enabled"),
    ("jobs", "scheduler_enabled"),
    ("admin", "enabled"),
]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ayb.toml"
    path.write_text(text)
    return str(path)


def env_name(section: str, name: str) -> str:
    return f"AYB_{section}_{name}".upper()


def assert_one_line(exc: pytest.ExceptionInfo[ConfigError], *parts: str) -> None:
    message = exc.value.message
    assert "\n" not in message
    for part in parts:
        assert part in message, message


def test_defaults_match_spec():
    s = load_settings(environ={"HOME": "/home/op"})
    assert (s.database.url, s.database.pool_max_size, s.database.statement_cache_size) == ("", 10, 100)
    assert s.database.auto_migrate is True and s.database.embedded_user == "ayb"
    assert s.jobs.enabled is False and s.jobs.worker_concurrency == 4 and s.jobs.poll_interval_ms == 1000
    assert (s.jobs.lease_duration_s, s.jobs.max_retries_default, s.jobs.scheduler_tick_s) == (300, 3, 15)
    assert (s.jobs.job_timeout_s, s.jobs.shutdown_timeout_s, s.jobs.recovery_interval_s) == (600, 30, 30)
    assert s.jobs.handlers == [] and s.jobs.scheduler_enabled is True
    assert (s.admin.enabled, s.admin.listen, s.admin.token) == (True, "127.0.0.1:8090", "")
    assert (s.log.format, s.log.level) == ("auto", "info")
    assert s.database.resolved_embedded_data_dir == Path("/home/op/.local/share/ayb-jobs/postgres")
    assert s.admin.resolved_token_file == Path("/home/op/.local/share/ayb-jobs/admin-token")
    assert set(s.sources.values()) == {"default"}


@pytest.mark.parametrize(("section", "name", "lo", "hi"), RANGES)
@pytest.mark.parametrize("via", ["file", "env"])
def test_range_bounds_are_enforced(tmp_path, section, name, lo, hi, via):
    def load(value: int) -> Settings:
        if via == "file":
            return load_settings(write(tmp_path, f"[{section}]\n{name} = {value}\n"), environ={})
        return load_settings(environ={env_name(section, name): str(value)})

    for ok in (lo, hi):
        assert getattr(getattr(load(ok), section), name) == ok
    for bad in (lo - 1, hi + 1):
        with pytest.raises(ConfigError) as exc:
            load(bad)
        origin = f"file {tmp_path}" if via == "file" else f"env {env_name(section, name)}"
        assert_one_line(exc, f"{section}.{name}", str(bad), origin, f"between {lo} and {hi}")


@pytest.mark.parametrize(("section", "name"), BOOLEANS)
def test_booleans_accept_true_false_1_0_in_any_case(section, name):
    for raw, expected in [("true", True), ("TRUE", True), ("1", True), ("False", False), ("0", False)]:
        s = load_settings(environ={env_name(section, name): raw})
        assert getattr(getattr(s, section), name) is expected


@pytest.mark.parametrize(("section", "name"), BOOLEANS)
@pytest.mark.parametrize("bad", ["yes", "2", "off", "no"])
def test_other_boolean_words_are_errors_in_env(section, name, bad):
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={env_name(section, name): bad})
    assert_one_line(exc, f"{section}.{name}", bad, env_name(section, name))


@pytest.mark.parametrize("bad", ['"yes"', "2", '"2"'])
def test_other_boolean_values_are_errors_in_file(tmp_path, bad):
    path = write(tmp_path, f"[jobs]\nenabled = {bad}\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert_one_line(exc, "jobs.enabled", bad.strip('"'), path)


def test_integer_settings_reject_booleans_and_fractions(tmp_path):
    for raw in ("true", "8.5"):
        with pytest.raises(ConfigError) as exc:
            load_settings(write(tmp_path, f"[jobs]\nworker_concurrency = {raw}\n"), environ={})
        assert_one_line(exc, "jobs.worker_concurrency", "integer")


def test_env_overrides_file_and_cli_overrides_env(tmp_path):
    path = write(tmp_path, "[jobs]\nworker_concurrency = 8\npoll_interval_ms = 500\n")
    env = {"AYB_JOBS_WORKER_CONCURRENCY": "12", "AYB_JOBS_ENABLED": "false"}
    s = load_settings(path, overrides={"jobs": {"enabled": True}}, environ=env)
    assert (s.jobs.worker_concurrency, s.jobs.poll_interval_ms, s.jobs.enabled) == (12, 500, True)
    assert s.sources["jobs.worker_concurrency"] == "env"
    assert s.sources["jobs.poll_interval_ms"] == "file"
    assert s.sources["jobs.enabled"] == "cli"
    assert s.sources["jobs.lease_duration_s"] == "default"


def test_config_path_from_ayb_config(tmp_path):
    path = write(tmp_path, "[log]\nlevel = 'debug'\n")
    assert load_settings(environ={"AYB_CONFIG": path}).log.level == "debug"


def test_unset_cli_flags_do_not_override():
    s = load_settings(overrides={"jobs": {"enabled": None}}, environ={"AYB_JOBS_ENABLED": "1"})
    assert s.jobs.enabled is True and s.sources["jobs.enabled"] == "env"


def test_unknown_key_in_file_is_an_error(tmp_path):
    path = write(tmp_path, "[jobs]\nworker_concurency = 8\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert_one_line(exc, "jobs.worker_concurency", path, "did you mean jobs.worker_concurrency")


def test_unknown_section_in_file_is_an_error(tmp_path):
    path = write(tmp_path, "[job]\nenabled = true\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert_one_line(exc, "job", path, "did you mean [jobs]")


def test_unknown_env_key_in_a_known_section_is_an_error():
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={"AYB_JOBS_FOO": "1"})
    assert_one_line(exc, "jobs.foo", "AYB_JOBS_FOO")


def test_unrelated_ayb_env_vars_and_empty_values_are_ignored():
    s = load_settings(environ={"AYB_SERVER_PORT": "8080", "AYB_JOBS_WORKER_CONCURRENCY": ""})
    assert s.jobs.worker_concurrency == 4


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_settings(str(tmp_path / "nope.toml"), environ={})
    assert_one_line(exc, "nope.toml", "does not exist", "--config")


def test_toml_syntax_error_is_one_line(tmp_path):
    path = write(tmp_path, "[jobs]\nenabled = \n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert_one_line(exc, path, "not valid TOML", "line 2")


def test_handlers_from_env_json_list():
    s = load_settings(environ={"AYB_JOBS_HANDLERS": '["myapp.jobs:register", "other:setup"]'})
    assert s.jobs.handlers == ["myapp.jobs:register", "other:setup"]
    assert s.sources["jobs.handlers"] == "env"


@pytest.mark.parametrize("raw", ["myapp.jobs:register", '["no_colon"]', '["a:b:c"]', '"a:b"'])
def test_handlers_must_be_a_json_list_of_module_callable(raw):
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={"AYB_JOBS_HANDLERS": raw})
    assert_one_line(exc, "jobs.handlers", "AYB_JOBS_HANDLERS")


def test_queues_default_to_every_queue_and_take_names_that_do_not_exist_yet(tmp_path):
    assert load_settings(environ={}).jobs.claim_queues is None
    s = load_settings(environ={"AYB_JOBS_QUEUES": '["email", "not-created-yet"]'})
    assert s.jobs.claim_queues == ["email", "not-created-yet"] and s.sources["jobs.queues"] == "env"
    path = write(tmp_path, '[jobs]\nqueues = ["*"]\n')
    assert load_settings(path, environ={}).jobs.claim_queues is None


@pytest.mark.parametrize("raw", ['["bad name"]', "[]", '["*", "email"]', '["a", "a"]', "email", '[""]'])
def test_bad_queue_lists_are_one_line_naming_the_key(raw):
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={"AYB_JOBS_QUEUES": raw})
    assert_one_line(exc, "jobs.queues", "AYB_JOBS_QUEUES")


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8090", ("127.0.0.1", 8090)),
        ("[::1]:8090", ("::1", 8090)),
        ("localhost:0", ("localhost", 0)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ],
)
def test_parse_listen_accepts(listen, expected):
    assert parse_listen(listen) == expected
    assert load_settings(environ={"AYB_ADMIN_LISTEN": listen}).admin.port == expected[1]


@pytest.mark.parametrize("listen", ["8090", "host:65536", "::1:8090", "host:", ":8090", "host:port"])
def test_bad_listen_is_an_error(listen):
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={"AYB_ADMIN_LISTEN": listen})
    assert_one_line(exc, "admin.listen", "AYB_ADMIN_LISTEN")


def test_admin_token_needs_16_chars_and_is_never_echoed():
    assert load_settings(environ={"AYB_ADMIN_TOKEN": "x" * 16}).admin.token == "x" * 16
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={"AYB_ADMIN_TOKEN": "sekrit-15-chars"})
    assert_one_line(exc, "admin.token", "16")
    assert "sekrit" not in exc.value.message


@pytest.mark.parametrize(("key", "bad"), [("log.format", "xml"), ("log.level", "trace")])
def test_log_choices(key, bad):
    section, name = key.split(".")
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={env_name(section, name): bad})
    assert_one_line(exc, key, bad)
    assert load_settings(environ={"AYB_LOG_LEVEL": "WARNING"}).log.level == "warning"


def test_database_url_must_be_a_postgres_dsn_and_errors_hide_the_password():
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={"AYB_DATABASE_URL": "mysql://u:hunter2@h/db"})
    assert_one_line(exc, "database.url", "postgres")
    assert "hunter2" not in exc.value.message


def test_report_redacts_secrets_and_lists_every_key():
    env = {
        "AYB_DATABASE_URL": "postgresql://app:hunter2@db:5432/app",
        "AYB_DATABASE_LISTEN_URL": "postgres://app:hunter3@db-direct/app",
        "AYB_ADMIN_TOKEN": "t" * 20,
    }
    rows = settings_report(load_settings(environ=env))
    assert [key for key, _, _ in rows] == all_keys()
    values = {key: (value, source) for key, value, source in rows}
    assert values["database.url"] == ("postgresql://app:***@db:5432/app", "env")
    assert values["database.listen_url"][0] == "postgres://app:***@db-direct/app"
    assert values["admin.token"] == ("***", "env")
    assert "hunter" not in repr(rows) and "t" * 20 not in repr(rows)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:p%40ss@h:5432/d", "postgres://u:***@h:5432/d"),
        ("connecting to postgresql://u:pw@h/d: refused", "connecting to postgresql://u:***@h/d: refused"),
        ("host=h user=u password=pw dbname=d", "host=h user=u password=*** dbname=d"),
        ("postgres://u@h/d?password=pw", "postgres://u@h/d?password=***"),
        ("postgres://h/d", "postgres://h/d"),
    ],
)
def test_redact_dsn(text, expected):
    assert redact_dsn(text) == expected


def test_data_dir_precedence():
    assert data_dir({"STATE_DIRECTORY": "/var/lib/ayb-jobs:/other", "XDG_DATA_HOME": "/x"}) == Path(
        "/var/lib/ayb-jobs"
    )
    assert data_dir({"XDG_DATA_HOME": "/x", "HOME": "/h"}) == Path("/x/ayb-jobs")
    assert data_dir({"HOME": "/h"}) == Path("/h/.local/share/ayb-jobs")


def test_explicit_paths_are_kept():
    env = {"AYB_DATABASE_EMBEDDED_DATA_DIR": "/srv/pg", "AYB_ADMIN_TOKEN_FILE": "/srv/tok"}
    s = load_settings(environ=env)
    assert s.database.resolved_embedded_data_dir == Path("/srv/pg")
    assert s.admin.resolved_token_file == Path("/srv/tok")


def test_settings_built_directly_read_no_environment(monkeypatch):
    monkeypatch.setenv("AYB_JOBS_ENABLED", "true")
    assert Settings().jobs.enabled is False
    assert Settings(jobs={"enabled": "1"}).jobs.enabled is True


def test_example_config_loads_with_every_key_from_the_file():
    s = load_settings(str(REPO / "config.example.toml"), environ={"HOME": "/h"})
    assert set(s.sources.values()) == {"file"}
    defaults = load_settings(environ={"HOME": "/h"})
    assert s.model_dump() == defaults.model_dump()


# --- DSNs (a malformed one used to reach the driver and print a traceback with the password) -------

BAD_DSNS = [
    ("postgresql://app:PW/x@host:1/db", "percent-encode"),  # '/' in the password
    ("postgresql://app:p@ss@host/db", "'@'"),
    ("postgresql://app:PW#1@host/db", "percent-encode"),
    ("postgresql://host:5432x/db", "not a number"),
    ("postgresql://host:99999/db", "out of range"),
    ("postgresql://host:0/db", "out of range"),
    ("postgresql://::1:5432/db", "brackets"),
    ("postgresql://[::1/db", "IPv6"),
    ("postgresql://[zz::1]:5432/db", "IPv6"),
    ("postgresql://[::1]x/db", "IPv6"),
    ("postgresql://h1,,h2/db", "empty host"),
    ("postgresql://:5432/db", "no host"),
    ("postgresql://h/db?port=abc", "not a number"),
    ("postgresql://h/db?sslmode=sometimes", "sslmode"),
    ("postgresql://h/db?a=1&&b", "query"),
    ("mysql://u:hunter2@h/db", "unknown scheme 'mysql'"),
    ("host=h user=u password=hunter2", "key=value"),
    ("postgresql://u:pw@h/d b", "whitespace"),
]


@pytest.mark.parametrize(("dsn", "reason"), BAD_DSNS)
@pytest.mark.parametrize("key", ["url", "listen_url"])
def test_malformed_dsn_is_one_line_naming_key_and_source_without_the_password(tmp_path, dsn, reason, key):
    for load, origin in (
        (lambda: load_settings(environ={f"AYB_DATABASE_{key.upper()}": dsn}),
         f"env AYB_DATABASE_{key.upper()}"),
        (lambda: load_settings(write(tmp_path, f"[database]\n{key} = '{dsn}'\n"), environ={}), "file "),
    ):
        with pytest.raises(ConfigError) as exc:
            load()
        assert_one_line(exc, f"database.{key}", origin, reason)
        for secret in ("PW", "hunter2", "p@ss", "pw@"):
            assert secret not in exc.value.message, exc.value.message


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:s3cr%2Ft@db.example.com:5432/app",
        "postgres://app@db/app",
        "postgresql://[::1]:5432/app",
        "postgresql://[fe80::1%25eth0]:5432/app",
        "postgresql://h1:5432,h2:5433,[::1]/app?target_session_attrs=read-write",
        "postgresql:///app?host=/var/run/postgresql",
        "postgresql://app:pw@/app?host=/tmp&port=5433",
        "postgresql://db/app?sslmode=verify-full&application_name=ayb",
        "postgresql://db:/app",
        "postgresql://",
    ],
)
def test_well_formed_dsns_are_accepted(dsn):
    assert load_settings(environ={"AYB_DATABASE_URL": dsn}).database.url == dsn


def test_redaction_hides_a_password_holding_slash_or_at():
    from ayb_jobs.config import redact_value

    assert redact_value("database.url", "postgresql://app:PW/x@host:1/db") == "postgresql://app:***@host:1/db"
    assert redact_value("database.url", "postgresql://app:p@ss@host/db") == "postgresql://app:***@host/db"
    assert redact_value("database.url", "postgresql://app:PW/x") == "postgresql://app:***/x"
    assert redact_value("database.url", "postgresql://host:5432/db") == "postgresql://host:5432/db"


# --- TOML files: encoding and exact types ---------------------------------------------------------


def test_non_utf8_file_is_one_line(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[log]\nlevel = "d\xe9bug"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as exc:
        load_settings(str(path), environ={})
    assert_one_line(exc, str(path), "not valid UTF-8", "0xe9")


@pytest.mark.parametrize(
    ("line", "key", "fragment"),
    [
        ('worker_concurrency = "8"', "jobs.worker_concurrency", "must be an integer, not a string"),
        ('enabled = "true"', "jobs.enabled", "must be a boolean, not a string"),
        ("enabled = 1", "jobs.enabled", "must be a boolean, not an integer"),
        ("handlers = \"a:b\"", "jobs.handlers", "must be an array"),
    ],
)
def test_toml_values_must_have_the_exact_type(tmp_path, line, key, fragment):
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, f"[jobs]\n{line}\n"), environ={})
    assert_one_line(exc, key, fragment, "file ")


def test_the_same_text_from_the_environment_is_parsed():
    s = load_settings(environ={"AYB_JOBS_WORKER_CONCURRENCY": "8", "AYB_JOBS_ENABLED": "true"})
    assert s.jobs.worker_concurrency == 8 and s.jobs.enabled is True


def test_quoted_number_error_says_how_to_write_it(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, '[jobs]\nworker_concurrency = "8"\n'), environ={})
    assert "write 8 without quotes" in exc.value.message


# --- where handler modules are imported from ------------------------------------------------------


def test_handler_search_path_is_handlers_path_then_config_dir_then_working_dir(tmp_path, monkeypatch):
    conf_dir, lib, work = tmp_path / "etc", tmp_path / "etc" / "lib", tmp_path / "work"
    for d in (lib, work):
        d.mkdir(parents=True)
    monkeypatch.chdir(work)
    path = conf_dir / "ayb.toml"
    path.write_text('[jobs]\nhandlers_path = ["lib"]\n')
    s = load_settings(str(path), environ={})
    assert s.jobs.handlers_path == [str(lib)]  # relative to the config file, made absolute
    assert s.handler_search_path() == [lib, conf_dir, work]
    env = load_settings(environ={"AYB_JOBS_HANDLERS_PATH": f"{lib}:{work}"})
    assert env.jobs.handlers_path == [str(lib), str(work)] and env.handler_search_path() == [lib, work]
    assert load_settings(environ={}).handler_search_path() == [work]


def test_handlers_path_entry_that_is_not_a_directory_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={"AYB_JOBS_HANDLERS_PATH": str(tmp_path / "missing")})
    assert_one_line(exc, "jobs.handlers_path", "AYB_JOBS_HANDLERS_PATH", "is not a directory")
