"""The benchmark (scripts/benchmark.sh; `python -m benchmarks --help`), one job per module:

  cli.py              arguments, the run: phases in turn, then scoring and outputs
  phases.py           cluster configurations (HAProxy, Python proxy, variants, log modes)
  paths.py            the paths a request can take, their targets and entry nodes
  compose_cluster.py  docker compose up/down of a phase, the project's containers
  readiness.py        waiting until a phase serves every path; gRPC probes
  haproxy_config.py   the running HAProxy's processes, config and admin socket
  measure.py          warm-ups and interleaved rounds, a CPU window inside each round
  load.py             one measurement: wrk.py (HTTP) or h2load.py (gRPC)
  wrk_output.py       parsing wrk's output (report.lua's WRK_JSON line)
  h2load_output.py    parsing h2load's report and request log
  cpu_accounting.py   cgroup CPU of containers, host relays, processes of the entry node
  stats.py            percentiles, medians over rounds, ratios, error counts
  scoring.py          CPU per request, latency added, ratios, goals
  paths_meta.py       what the results record about each path
  report_markdown.py  the results as markdown; chart.py the chart; readme.py the docs' blocks
  console.py          the summary printed at the end; outputs.py the files written
  machine.py          the machine, and other work running beside the benchmark
  apps.py, shell.py   the benchmark app's names and gRPC bytes; running commands
The results document's schema: results.schema.json.
"""
