/* SPDX-License-Identifier: MIT */
/*
 * router: the routing table (every subscription of the slots' current
 * instances as a pattern: exact, PREFIX_* or *; sorted by priority, then ini
 * order) and the route of each job: its subscriber list and the message
 * view handed to plugins, which exec carries from strand to strand. Route
 * states are recycled through the host's pool. I/O thread only.
 */
#ifndef BLAZEBOT_ROUTER_H
#define BLAZEBOT_ROUTER_H

struct job;
struct plugin_host;

/* plugins_route (only NULL) and plugins_route_to (only: the plugin name). */
int router_route(struct plugin_host *h, struct job *job, const char *only);
/* plugins_job_done: puts the job's route state back in the pool. */
void router_job_done(struct plugin_host *h, struct job *job);
/* Rebuilds and sorts the routing table from the slots' current instances;
 * keeps the old one on out-of-memory (logged). */
void router_commit(struct plugin_host *h);

#endif
