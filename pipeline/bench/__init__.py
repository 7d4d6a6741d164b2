"""`graphmint bench`: latency, throughput, memory and size of every verified artifact next to the eager
model, measured in child processes by a stability rule, and the fastest artifact recommended."""
