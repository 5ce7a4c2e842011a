#pragma once
// The recsync operator CLI. run_cli() parses argv, talks to the daemon over
// the control socket (or reads the node identity for `id`/`keygen`), prints,
// and returns an ExitCode (include/recsync/exit_codes.h).
namespace recsync {
int run_cli(int argc, char** argv);
}
