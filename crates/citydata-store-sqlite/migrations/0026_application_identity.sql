-- 统一认证 meets the applications registry (issues #17, #21): an application may name the
-- service account (服务账号) it calls citydata as, by username; the account's console page
-- lists the applications that name it.
ALTER TABLE applications ADD COLUMN service_account TEXT;
