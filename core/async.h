/* SPDX-License-Identifier: MIT */
/*
 * async: the plugin services that finish later, on the plugin's strand:
 * holds on a message (hold, release, and the RETRY release of what is left
 * before an instance's shutdown), api_request and upload. Also which job a
 * send belongs to: the message on_message handles on this thread, or a
 * held one. Part of the plugin host; host.c puts these functions in the
 * services table. Threads: the services run on the calling plugin's thread;
 * answers arrive on the I/O thread and are posted to the instance's strand.
 */
#ifndef BLAZEBOT_ASYNC_H
#define BLAZEBOT_ASYNC_H

#include <blazebot/plugin.h>

#include <stddef.h>
#include <stdint.h>

struct instance;
struct plugin_host;
struct job;

/* The job a send from this thread belongs to: only the thread running
 * on_message for the instance, during that call; NULL otherwise. */
struct job *async_current_job(struct instance *in);
struct hold;
/* A send tied to a held message begins: the hold of in named handle, or
 * (handle NULL) the one whose message view is msg, pinned so that a release
 * on another thread cannot end the delivery (and free the job) before the
 * send is queued. NULL when there is no such hold, or it is being released.
 * Every pin is followed by async_unpin. */
struct hold *async_pin(struct instance *in, blazebot_hold *handle,
                       const struct blazebot_message *msg);
/* The send is queued (or failed): completes a release that came meanwhile. */
void async_unpin(struct instance *in, struct hold *hd);

/* plugin.h: hold, release, api_request, upload. */
blazebot_hold *async_hold(blazebot_ctx *ctx, const struct blazebot_message *msg);
int async_release(blazebot_ctx *ctx, blazebot_hold *handle, int result);
int async_api_request(blazebot_ctx *ctx, const char *method, const char *path,
                      const void *body, size_t body_len, uint32_t timeout_ms,
                      blazebot_api_fn done, void *arg);
int async_upload(blazebot_ctx *ctx, const void *data, size_t len, const char *mime,
                 uint32_t timeout_ms, blazebot_upload_fn done, void *arg);

/* Any thread, right before in's shutdown: every hold of in still taken is
 * released as RETRY (the message comes again, to the slot's next instance
 * or after a restart). Until then a replaced instance's callbacks may still
 * release its holds themselves. */
void async_release_holds(struct plugin_host *h, struct instance *in);

#endif
