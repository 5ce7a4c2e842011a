#include "cli/cli.h"

int main(int argc, char** argv) { return recsync::run_cli(argc, argv); }
