DROP INDEX `tasks_request_state_idx`;--> statement-breakpoint
ALTER TABLE `tasks` ADD `lease_until` integer;--> statement-breakpoint
CREATE INDEX `tasks_request_state_job_idx` ON `tasks` (`request_id`,`state`,`job_index`);