// Package basins routes many independent basins (and ensemble members) as
// one job: a folder of RAPID basins, one folder per basin or VPU, planned
// basin by basin with the diffroute memory planner, run on this machine by a
// worker pool packed under a memory budget, or on a cluster as a Slurm job
// array with a gather job.
//
// A job lives in its output folder:
//
//	OUT/job.json                  the tasks (basin × member), their inputs and planned memory
//	OUT/<basin>[/<member>]/Qout.nc discharge of one task, written by `diffroute route`
//	OUT/<basin>[/<member>]/done.json   the task's record: reaches, time range, sha256, peak RSS
//	OUT/<basin>[/<member>]/failed.json the last failure's error, removed by a later success
//	OUT/manifest.csv, manifest.json    written by Gather from the records
//	OUT/Qout.nc                   the merged discharge of every basin (Gather with merge)
//	OUT/slurm/                    sbatch scripts, submit.sh, submitted.json, task logs
//
// Every task is idempotent: the route command writes its output to a
// temporary name and renames it, the record is written last (also by
// rename), and a task whose record matches its output file is skipped. A
// rerun or a resubmission therefore does only the tasks that are missing or
// failed.
//
// Each task runs the diffroute command itself (`diffroute route`, or
// `diffroute calibrate` for a calibration job): under Slurm as a child
// process of its array task, on this machine in job workers (`diffroute
// jobs worker`), long-lived processes that run task after task in process,
// so that a run of many small basins does not pay a process start and a
// fresh heap per basin. Either way a crash or an out-of-memory kill stays
// with its task, and its peak resident memory is measured and recorded.
package basins
