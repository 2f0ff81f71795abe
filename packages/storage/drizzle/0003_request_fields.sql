ALTER TABLE `requests` ADD `max_attempts` integer;--> statement-breakpoint
ALTER TABLE `requests` ADD `port` integer;--> statement-breakpoint
-- Requests stored before these columns existed kept both facts only in their config JSON.
-- Derived as the server and core derived them from it: 1 + `retries` for a whole number of
-- retries >= 0 (otherwise no limit), and a whole-number `port` in 1..65535 (otherwise none).
UPDATE `requests` SET
  `max_attempts` = CASE
    WHEN json_type(`config`, '$.retries') IN ('integer', 'real')
      AND json_extract(`config`, '$.retries') BETWEEN 0 AND 9007199254740990
      AND json_extract(`config`, '$.retries') = CAST(json_extract(`config`, '$.retries') AS INTEGER)
    THEN CAST(json_extract(`config`, '$.retries') AS INTEGER) + 1
  END,
  `port` = CASE
    WHEN json_type(`config`, '$.port') IN ('integer', 'real')
      AND json_extract(`config`, '$.port') BETWEEN 1 AND 65535
      AND json_extract(`config`, '$.port') = CAST(json_extract(`config`, '$.port') AS INTEGER)
    THEN CAST(json_extract(`config`, '$.port') AS INTEGER)
  END
WHERE json_valid(`config`);
