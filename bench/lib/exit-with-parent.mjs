// Preloaded into the kubesocks processes the benchmark starts
// (node --import): they exit when the runner's pipe on their stdin closes, so
// even a runner killed with SIGKILL leaves no kubesocks process behind.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
