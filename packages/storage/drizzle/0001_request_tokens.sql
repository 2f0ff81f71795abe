CREATE TABLE `request_tokens` (
	`id` integer PRIMARY KEY NOT NULL,
	`request_id` integer NOT NULL,
	`token_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`request_id`) REFERENCES `requests`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `request_tokens_request_idx` ON `request_tokens` (`request_id`);