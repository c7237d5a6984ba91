"""Actions: long work written as intent first (intake), run by its command's runner
(registry, runner, worker), its progress and outcome recorded (store)."""
