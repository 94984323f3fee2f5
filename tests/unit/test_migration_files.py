"""The migration files as this code reads them: directives, the index a no-transaction file names, checksums."""

from __future__ import annotations

from pathlib import Path

import pytest

from birthday_pipeline.schema.files import MigrationError, shipped_migrations

# The sha256 recorded for each file by 0.3.0, the last release before the index names were written into the
# directives: a database it migrated must upgrade without a single migration refused as changed.
CHECKSUMS_0_3_0 = {
    "0001_users.sql": "585b4266644261250e07cb6be374301e07d184b8c50a255e1d3d7646bfbf50f2",
    "0002_notifications.sql": "e9fe87b72ad4ba40002138aee6a5cbb987d7c4ab785c92372e483d10bedbca8b",
    "0003_delivery.sql": "5e0f65a49901e10fe6e63a1da30d4575bb8096dcd1d180b0e72a65e087efb4a8",
    "0004_send_pacing.sql": "6b18ef08c6b4b86140528fa8fb39c3fb747c5879bc2822db6ee2995702be2c3a",
    "0005_occasions.sql": "f6249772ae6980083a296d789cb83a70ea2311add99e6c5bb7fb301daec346ff",
    "0006_attempt_task_instance.sql": "391019880f67e10d49f47b72be9e9aff00a6f56bea9c12f0422825b8b5d4db24",
    "0009_users_planning_covering_index.sql": "ea5b3c81a7bfd2f04f1cf7633a032b98b9c684e2f6e6943ccdf7d99c8ecb7417",
    "0010_claim_leases.sql": "98bab08d8d1d9465517ae5aa3f04e07b02a63510ae8e57ec92481b31ad996268",
    "0011_send_pacing_by_endpoint_hash.sql": "353dbf98b60bc31588c3b74f79432d7ba8c05ad81076d9a170577ef71f9435d7",
    "0012_one_notification_per_year.sql": "8f3818381a8792fd2404ba038a578d908ab918d11315d19d816a7004ee133070",
    "0013_notifications_user_occasion_year_key.sql": "33d821cbcd9f56c0e83c227b2ebf36583615712757362a1e8bb8e54f8913dbcc",
    "0014_notifications_drop_per_date_key.sql": "2255b2c9c5213679c51c835dbab75e32ec0fb9ee7b21189807528b1b8fc1f9cd",
    "0015_notifications_send_at_index.sql": "df33fcaa345655b1a83f7cb0d81766ce110884f1d3c81fe5f7f23927746840c3",
    "0016_notifications_occasion_date_index.sql": "b130fdf78ead643cc16bd99785bb910c896a7ffff51233bf6f1d0ee9e6f2a8ef",
    "0017_notification_attempts_started_at_index.sql": "5803f3042e7b4cbd20f1b5a4e4aba752b3a9f1bf3a9f1f95395832a9038dba30",
    "0020_notifications_without_users_foreign_key.sql": "1aae0b3358c34ab8047262bc4813dffcfc26c0008f238d522e4b981c6c316cdf",
    "0021_users_hired_on_month_day_index.sql": "4e42f86a032ccfdfed8456b4037939f51af44da013d69cc8de8cdcdd259b0912",
    "0022_users_drop_birth_month_day_index.sql": "f6c2242ec882e16d95087badd82e0329cfe039b8b05ca3ede0543580fc8ec05f",
    "0030_alert_state.sql": "e93679fca65d503fa43790b71d0e986ac073169358db93f53eb7c4e9c62914bf",
    "0031_notifications_problems_index.sql": "9f6952c806b1d6e6c45bf09a42516a6f0e718f84f2a0c8855b2801066d587cf0",
    "0033_notifications_sent_at_index.sql": "3e75031eda61281d444d3b25c051591f6a7405d33259745130e81224ae856e6a",
    "0034_notifications_invalid_date_index.sql": "c1fe00208af547112404501f9546477766688fc3e9efa59ebcef3ee25c65ea53",
    "0035_webhook_endpoints.sql": "d2d2c074a2c23b544158d422f71e63d241722b321aa1d1d0b87bef527fd35f99",
}


def test_the_checksums_0_3_0_recorded_still_hold() -> None:
    assert {m.name: m.checksum for m in shipped_migrations()} == CHECKSUMS_0_3_0


def test_every_no_transaction_migration_names_the_index_its_statement_builds_or_drops() -> None:
    for migration in shipped_migrations():
        if migration.no_transaction:
            statement = " ".join(migration.sql.split()).upper()
            if migration.index is not None:
                assert f"CONCURRENTLY IF NOT EXISTS {migration.index.upper()} ON" in statement, migration.name
            else:
                dropped = f"DROP INDEX CONCURRENTLY IF EXISTS {migration.drops_index.upper()};"
                assert dropped in statement, migration.name
        else:
            assert (migration.index, migration.drops_index) == (None, None), migration.name


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return directory


def test_a_no_transaction_migration_without_its_index_is_refused_by_name(tmp_path: Path) -> None:
    directory = write(tmp_path / "m", "0001_idx.sql",
                      "-- birthday_pipeline: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_idx ON t (a);\n")
    with pytest.raises(MigrationError, match=r"^0001_idx\.sql: a no-transaction migration names the one index it "
                                             r"builds or drops.*index=NAME"):
        shipped_migrations(directory)


@pytest.mark.parametrize("line", ["-- birthday_pipeline: no-transaction index=a drops-index=b",
                                  "-- birthday_pipeline: no-transaction name=a",
                                  "-- birthday_pipeline: bundled-users index=a",
                                  "-- birthday_pipeline: no-transaction index=",
                                  "-- birthday_pipeline: transactional"])
def test_a_malformed_directive_is_refused(tmp_path: Path, line: str) -> None:
    with pytest.raises(MigrationError, match=r"^0001_x\.sql: "):
        shipped_migrations(write(tmp_path / "m", "0001_x.sql", f"{line}\nSELECT 1;\n"))


def test_the_checksum_leaves_out_the_index_name_and_nothing_else(tmp_path: Path) -> None:
    def migration(directory: str, directive: str, column: str):
        [read] = shipped_migrations(write(tmp_path / directory, "0001_i.sql", f"-- birthday_pipeline: {directive}\n"
                                          f"CREATE INDEX CONCURRENTLY IF NOT EXISTS t_idx ON t ({column});\n"))
        return read

    named = migration("a", "no-transaction index=t_idx", "a")
    assert named.index == "t_idx"
    assert named.checksum == migration("b", "no-transaction index=other_idx", "a").checksum
    assert named.checksum != migration("c", "no-transaction index=t_idx", "b").checksum
