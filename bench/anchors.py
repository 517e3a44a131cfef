"""The bench's anchors: the same workloads on DuckDB and PostgreSQL, timed the same way.

`citydata bench` runs this with the Python of the environment `bench/setup-anchors.sh` makes
(or `CITYDATA_BENCH_PYTHON`); its one argument is a JSON object with the files and sizes, and
its answer is one JSON line on stdout. Timings are lists of seconds, sorted.
"""
import json, sys, time, os
args = json.loads(sys.argv[1])
out = {}
def t(f, n=1):
    ts = []
    for _ in range(n):
        s = time.perf_counter(); f(); ts.append(time.perf_counter() - s)
    ts.sort(); return ts
cols = ["身份证号", "姓名", "性别", "出生日期", "民族", "行政区划代码", "区县", "户籍地址", "手机号", "婚姻状况", "文化程度", "更新时间"]
try:
    import duckdb
    out["duckdb_version"] = duckdb.__version__
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("SET enable_progress_bar = false")
    csv = args["csv"]; pq = args["parquet"]; big = args["big_csv"]; bigpq = args["big_parquet"]
    out["duckdb_ingest"] = t(lambda: con.execute(f"COPY (SELECT * FROM read_csv('{csv}', header=true)) TO '{pq}' (FORMAT parquet)"), args["runs"])
    # The same ingest with the duties citydata's ingest of this register has, in DuckDB's SQL:
    # every cell typed (both date spellings), the GB 11643 checks of 身份证号 (form, check digit,
    # region among the register's codes, birth date), 性别 in its enum and consistent with the
    # number, 出生日期 consistent with it, 行政区划代码 among the codes, 手机号's form, the key
    # unique, and the file written sorted by the key. Not a target: it shows what the duties
    # themselves cost an engine that is not citydata.
    W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    digit = " + ".join(f"(ascii(substr(身份证号, {i + 1}, 1)) - 48) * {w}" for i, w in enumerate(W))
    regions = "('321200', '321202', '321203', '321204', '321281', '321282', '321283')"
    born = "try_strptime(出生日期, ['%Y-%m-%d', '%Y/%-m/%-d'])::DATE"
    staged = (
        f"CREATE OR REPLACE TEMP TABLE staged AS SELECT 身份证号, 姓名, 性别, {born} AS 出生日期, 民族, 行政区划代码, 区县, "
        "户籍地址, 手机号, 婚姻状况, 文化程度, try_strptime(更新时间, '%Y-%m-%d %H:%M:%S') AS 更新时间, "
        "coalesce(regexp_full_match(身份证号, '[1-9][0-9]{16}[0-9X]') "
        f"AND substr('10X98765432', CAST(({digit}) % 11 + 1 AS BIGINT), 1) = substr(身份证号, 18, 1) "
        f"AND substr(身份证号, 1, 6) IN {regions} "
        f"AND try_strptime(substr(身份证号, 7, 8), '%Y%m%d')::DATE = {born} "
        "AND 性别 IN ('男', '女') AND 性别 = CASE WHEN (ascii(substr(身份证号, 17, 1)) - 48) % 2 = 1 THEN '男' ELSE '女' END "
        f"AND 行政区划代码 IN {regions} AND regexp_full_match(手机号, '1[3-9][0-9]{{9}}') "
        "AND try_strptime(更新时间, '%Y-%m-%d %H:%M:%S') IS NOT NULL, false) AS ok "
        f"FROM read_csv('{csv}', header=true, all_varchar=true)"
    )
    def duties():
        con.execute(staged)
        bad, dup = con.execute("SELECT count(*) FILTER (WHERE NOT ok), count(*) - count(DISTINCT 身份证号) FROM staged").fetchone()
        assert bad == 0 and dup == 0, (bad, dup)
        con.execute(f"COPY (SELECT * EXCLUDE (ok) FROM staged ORDER BY 身份证号) TO '{pq}.duties' (FORMAT parquet)")
        con.execute("DROP TABLE staged")
    out["duckdb_ingest_duties"] = t(duties, args["runs"])
    os.remove(f"{pq}.duties")
    # Filters and groups on the same row count as citydata's large table (not timed: the load).
    con.execute(f"COPY (SELECT * FROM read_csv('{big}', header=true)) TO '{bigpq}' (FORMAT parquet)")
    con.execute(f"CREATE OR REPLACE VIEW big AS SELECT * FROM read_parquet('{bigpq}')")
    out["duckdb_filter_limit"] = t(lambda: con.execute("SELECT * FROM big WHERE 区县 = '海陵区' LIMIT 100").fetchall(), args["probes"])
    out["duckdb_group_count"] = t(lambda: con.execute("SELECT 区县, count(*) FROM big GROUP BY 区县 ORDER BY 区县").fetchall(), args["runs"] * 3)
    con.execute(f"CREATE OR REPLACE VIEW p AS SELECT * FROM read_parquet('{pq}')")
    v = lambda c: f"CAST({c} AS VARCHAR)"
    masked = (f"SELECT left({v('身份证号')}, 6) || '************' AS 身份证号, "
              f"left(姓名, 1) || repeat('*', length(姓名) - 1) AS 姓名, 性别, year(try_strptime(出生日期, ['%Y-%m-%d', '%Y/%-m/%-d'])) AS 出生日期, 民族, 行政区划代码, 区县, "
              f"left(户籍地址, 6) || '****' AS 户籍地址, left({v('手机号')}, 3) || '****' || right({v('手机号')}, 4) AS 手机号, "
              "婚姻状况, 文化程度, 更新时间 FROM p")
    out["duckdb_export_masked"] = t(lambda: con.execute(f"COPY ({masked}) TO '{args['export']}' (HEADER, DELIMITER ',')"), args["runs"])
except Exception as e:
    out["duckdb_error"] = str(e)
pg = args.get("pg")
if pg:
    try:
        import psycopg
        # PostgreSQL 15 lets only the database's owner create tables in `public`: work in a
        # database of our own (the bench's user has CREATEDB, as scripts/pg-setup.sh makes it).
        with psycopg.connect(pg, autocommit=True) as c:
            if c.execute("SELECT 1 FROM pg_database WHERE datname = 'citydata_bench'").fetchone() is None:
                c.execute("CREATE DATABASE citydata_bench")
            dsn = psycopg.conninfo.make_conninfo(pg, dbname="citydata_bench")
        with psycopg.connect(dsn, autocommit=True) as c:
            out["pg_version"] = c.execute("SHOW server_version").fetchone()[0].split()[0]
            def load(path):
                c.execute("DROP TABLE IF EXISTS bench_people")
                c.execute("CREATE TABLE bench_people (" + ", ".join(f'"{x}" text' for x in cols) + ")")
                with open(path, "rb") as f:
                    next(f)
                    with c.cursor().copy('COPY bench_people FROM STDIN (FORMAT csv)') as cp:
                        while chunk := f.read(1 << 20):
                            cp.write(chunk)
                c.execute('CREATE INDEX ON bench_people ("身份证号")')
            out["pg_ingest"] = t(lambda: load(args["csv"]), 1)
            load(args["big_csv"])
            lat = []
            for i in args["ids"]:
                s = time.perf_counter()
                c.execute('SELECT * FROM bench_people WHERE "身份证号" = %s', (i,)).fetchall()
                lat.append(time.perf_counter() - s)
            lat.sort(); out["pg_lookup"] = lat
            c.execute("DROP TABLE bench_people")
    except Exception as e:
        out["pg_error"] = str(e)
print(json.dumps(out))
