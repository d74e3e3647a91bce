package main

// examples are printed after the flags by '<command> -h'. Every one runs
// from the repository root (TestHelpExamples runs the route ones).
var examples = map[string]string{
	"download": `  # DiffHydro's sample data for VPU 305 (RAPID configuration, pixel runoff, weights) into data/305
  diffroute download vpu 305 --out data

  # then route it
  diffroute route --rapid data/305/configs --pixel-runoff data/305/305_daily_sparse_runoff.feather \
      --weights data/305/305_interp_weight.feather --out out/Q305.nc

  # any file, checked against a published digest; run again to resume
  diffroute download url https://example.org/runoff.nc --sha256 HEX --out runoff.nc
`,
	"route": `  # RAPID's test basin: 3-hour runoff volumes (m3) on 15-minute sub-steps, Muskingum from k.csv and x.csv
  diffroute route --rapid testdata/rapid_xx9 \
      --runoff testdata/rapid_xx9/m3_riv_bas_erai_t511_3hr_20030121to20030122.nc \
      --substep 900 --out out/Qout.nc

  # CSV runoff has no units attribute or times: give both
  diffroute route --rapid testdata/rapid_xx9 --runoff testdata/rapid_xx9/m3_riv.csv \
      --runoff-units m3 --step 10800 --substep 900 --out out/Qout.csv

  # another IRF with one value for every reach (times in runoff steps: tau=0.5 is half a step)
  diffroute route --rapid testdata/demo_basin --runoff testdata/demo_basin/runoff.nc \
      --irf linear_storage --param tau=0.5 --substep 3600 --out out/Qls.nc

  # DiffRoute's kernel method, or its exact numbers
  diffroute route --rapid testdata/demo_basin --runoff testdata/demo_basin/runoff.nc \
      --method kernel --substep 3600 --out out/Qk.nc
  diffroute route --rapid testdata/demo_basin --runoff testdata/demo_basin/runoff.nc \
      --compat diffroute --substep 3600 --out out/Qdr.nc

  # within a memory budget (the whole process's): the planner picks method, clusters and time chunk
  diffroute route --rapid testdata/demo_basin --runoff testdata/demo_basin/runoff.nc \
      --substep 3600 --mem-budget 96MiB --out out/Qbudget.nc

--step and --substep are in seconds; --substep must divide the runoff step.
k.csv is in seconds, but --param values are in runoff steps.
Many basins at once (local workers or a Slurm array): see 'diffroute route --basins DIR -h'.
`,
	"demo": `  diffroute demo                               # out/demo/Qout.nc and out/demo/hydrograph.html
  diffroute demo --irf nash_cascade --param tau=0.3 --out out/nash
`,
	"plan": `  diffroute plan --rapid testdata/demo_basin --steps 365 --mem-budget 64MiB
  diffroute plan --reaches 200000 --steps 2000 --mem-budget 1GiB
  diffroute plan --rapid testdata/demo_basin --steps 365 --mem-budget 64MiB --gpu-memory 1GiB   # and on a GPU
`,
	"bench": `  diffroute bench --reaches 20000 --kernel-reaches 2000 --steps 50 --repeat 1
  diffroute bench --method recursive --irf linear_storage
`,
	"generate": `  diffroute generate --out /tmp/basin --reaches 500 --days 30
  diffroute generate --out /tmp/basins --basins 4 --reaches 2000 --days 30   # four basins for route --basins
  diffroute route --rapid /tmp/basin --runoff /tmp/basin/runoff.nc --substep 3600 --out /tmp/basin/Qout.nc
`,
	"jobs": `  diffroute jobs status job            # per basin: done, running, pending, failed or missing
  diffroute jobs status --wait job     # once nothing is queued or running
  diffroute jobs gather --merge job    # verify every output, write manifest.csv and the merged Qout.nc
  diffroute jobs task job 3            # array task 3: what the Slurm scripts run
(job is the --out folder of 'diffroute route --basins DIR --out job'.)
`,
	"grad": `  # a generated basin with "observed" discharge at 6 gauges (5 % noise)
  diffroute generate --out /tmp/basin --reaches 500 --days 60 --attributes --gauges 6 --obs-noise 0.05
  # dL/dk (per second) and dL/dx of every reach, and the runoff sensitivity map
  diffroute grad --rapid /tmp/basin --runoff /tmp/basin/runoff.nc --substep 3600 \
      --observed /tmp/basin/observed.csv --loss nse --out /tmp/basin/grad.csv --runoff-grad /tmp/basin/dL_drunoff.nc

--loss sse is the plain sum over gauges and steps of (y - obs)^2; mse, nse, kge and lognse
are averaged over gauges, as diffroute calibrate minimises them.
`,
	"calibrate": `  # a twin experiment: reach attributes, k and x from their law, "observed" discharge at 8 gauges (5 % noise)
  diffroute generate --out /tmp/basin --reaches 200 --days 240 --attributes --gauges 8 --obs-noise 0.05
  # calibrate every reach from a constant prior (--param in runoff steps: k=0.25 is 6 hours), validate from June
  diffroute calibrate --rapid /tmp/basin --runoff /tmp/basin/runoff.nc --observed /tmp/basin/observed.csv \
      --substep 3600 --param k=0.25 --param x=0.2 --train-until 2000-06-01 --epochs 30 --out /tmp/basin/cal
  diffroute route --rapid /tmp/basin --runoff /tmp/basin/runoff.nc --substep 3600 --params-from /tmp/basin/cal --out /tmp/basin/Qcal.nc
  # learn log k and x as a linear function of the (log, standardised) attributes, with L-BFGS
  diffroute calibrate --rapid /tmp/basin --runoff /tmp/basin/runoff.nc --observed /tmp/basin/observed.csv \
      --substep 3600 --param k=0.25 --param x=0.2 --map loglinear:/tmp/basin/attributes.csv \
      --bounds k=1800:inf,x=0:0.5 --optimizer lbfgs --epochs 30 --out /tmp/basin/learn

--bounds k and k.csv are in seconds; --param, --prior and params.csv in runoff steps.
Many basins at once (local workers or a Slurm array): see 'diffroute calibrate --basins DIR -h'.
`,
	"irfs": `  diffroute irfs     # then: diffroute route --irf NAME --param NAME=VALUE …
`,
}
