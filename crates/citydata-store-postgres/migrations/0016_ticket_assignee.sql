-- 纠错 tickets: the provider's steward who answers it (a username of the provider department).
ALTER TABLE quality_tickets ADD COLUMN assignee TEXT;
