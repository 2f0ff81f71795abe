CREATE TABLE `errors` (
	`id` integer PRIMARY KEY NOT NULL,
	`request_id` integer NOT NULL,
	`job_index` integer NOT NULL,
	`error` blob NOT NULL,
	`attempt` integer NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`request_id`,`job_index`) REFERENCES `tasks`(`request_id`,`job_index`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `errors_request_job_unique` ON `errors` (`request_id`,`job_index`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` integer PRIMARY KEY NOT NULL,
	`request_id` integer NOT NULL,
	`backend` text NOT NULL,
	`job_id` text,
	`submitted_at` integer NOT NULL,
	`indices` text NOT NULL,
	`state` text DEFAULT 'submitted' NOT NULL,
	`meta` text,
	FOREIGN KEY (`request_id`) REFERENCES `requests`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `jobs_request_idx` ON `jobs` (`request_id`);--> statement-breakpoint
CREATE TABLE `requests` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`created_at` integer NOT NULL,
	`func` blob NOT NULL,
	`ns` blob NOT NULL,
	`token_hash` text,
	`n_tasks` integer NOT NULL,
	`backend` text,
	`label` text,
	`config` text,
	`status` text DEFAULT 'active' NOT NULL
);
--> statement-breakpoint
CREATE TABLE `results` (
	`id` integer PRIMARY KEY NOT NULL,
	`request_id` integer NOT NULL,
	`job_index` integer NOT NULL,
	`result` blob NOT NULL,
	`attempt` integer NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`request_id`,`job_index`) REFERENCES `tasks`(`request_id`,`job_index`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `results_request_job_unique` ON `results` (`request_id`,`job_index`);--> statement-breakpoint
CREATE TABLE `tasks` (
	`id` integer PRIMARY KEY NOT NULL,
	`request_id` integer NOT NULL,
	`job_index` integer NOT NULL,
	`args` blob NOT NULL,
	`state` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`reason` text,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`request_id`) REFERENCES `requests`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tasks_request_job_unique` ON `tasks` (`request_id`,`job_index`);--> statement-breakpoint
CREATE INDEX `tasks_request_state_idx` ON `tasks` (`request_id`,`state`);