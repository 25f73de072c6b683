/* SPDX-License-Identifier: MIT */
/*
 * keygen: the identity and TLS tools of blazebot-sim. "keygen" writes a bot
 * keystore in any of the three generations of protocol.md §2 (for tests, or
 * for a local bot talking to the simulator); "gen-tls" makes a throwaway CA
 * and a localhost server certificate signed by it, with the OpenSSL API
 * only. Both are main()-style: argv[0] is the subcommand name, messages go
 * to stdout/stderr, and the result is a process exit code (0 ok, 1 error,
 * 2 usage). Neither keeps state between calls, so a test may call them
 * repeatedly in one process. Private keys are written with mode 0600.
 */
#ifndef BLAZEBOT_SIM_KEYGEN_H
#define BLAZEBOT_SIM_KEYGEN_H

/* blazebot-sim keygen [--type ed25519|ed25519-legacy|rsa] [--user-id UUID]
 *                     [--session-id UUID] [--force] -o FILE */
int sim_keygen_main(int argc, char **argv);

/* blazebot-sim gen-tls --dir DIR [--cn NAME] */
int sim_gentls_main(int argc, char **argv);

#endif
