-- The evaluation benchmark fixture (issue #17): 100 departments, 1,000 resources and
-- 10,000,000 audit entries over 2026 (~2.5 M a quarter, 60 % gate reads), loaded into a SQLite
-- database made from migrations 0001, 0002 (then 0013 after the load, to build the index once).
-- See BENCHMARKS.md, "Evaluation".
PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
WITH RECURSIVE d(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM d WHERE i < 99)
INSERT INTO departments SELECT 'd' || i, '部门' || i, '321200', 'city', NULL, 0 FROM d;
WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM r WHERE i < 999)
INSERT INTO resources SELECT printf('00000000-0000-0000-0000-%012d', i), printf('101/%06d', i), 's' || i, 'n' || i, 'd' || (i % 100),
 'basic', 'population', 'unconditional', 'none', 'monthly', 'published', 'general', ',', 1, 0, 0, '{}' FROM r;
-- 10,000,000 entries over one year (2026), ~2.5 M a quarter; 60 % reads through the gate.
WITH RECURSIVE a(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM a WHERE i < 10000000)
INSERT INTO audit_log (seq, at, actor, department, action, target, outcome, request_id, client, details, prev_hash, hash)
SELECT i, 1767196800000000 + i * 3153600, 'u' || (i % 5000),
  CASE WHEN i % 7 = 0 THEN NULL ELSE 'd' || (i % 97) END,
  CASE i % 10 WHEN 0 THEN 'data.export' WHEN 1 THEN 'data.aggregate' WHEN 2 THEN 'data.read_rows' WHEN 3 THEN 'data.read_rows'
    WHEN 4 THEN 'data.read_rows' WHEN 5 THEN 'data.read_rows' WHEN 6 THEN 'auth.login' WHEN 7 THEN 'resource.update'
    WHEN 8 THEN 'request.create' ELSE 'auth.logout' END,
  printf('resource:101/%06d', (i * 7919) % 1000), CASE WHEN i % 13 = 0 THEN 'denied' ELSE 'success' END,
  NULL, NULL, '{}', '', ''
FROM a;
