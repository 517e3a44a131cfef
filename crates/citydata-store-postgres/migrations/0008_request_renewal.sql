-- A request may renew an existing grant; public applications record the commitment text accepted.
ALTER TABLE requests ADD COLUMN renews_grant UUID;
ALTER TABLE requests ADD COLUMN commitment TEXT;
