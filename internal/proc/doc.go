// Package proc identifies processes across time: a process id together with
// the process's start time, the boot and the PID namespace it was seen in.
// A pid alone is not enough to tell whether the process that owned a
// record or a directory still runs, since pids are reused.
//
// geckohost records the identity of a serve run in the database (to tell
// whether the sessions of an earlier run can still be live) and the owner
// of each Firefox profile directory it makes (to remove the directories of
// processes that were killed without a chance to clean up).
package proc
