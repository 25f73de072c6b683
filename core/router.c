/* SPDX-License-Identifier: MIT */
/*
 * router: see router.h. The table is rebuilt whole (at startup and when a
 * reload finishes) and read by routing, both on the I/O thread; workers see
 * only a job's own route state.
 */
#include "router.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "exec.h"
#include "loader.h"
#include "log.h"
#include "plugin_host.h"

struct route {
  char pattern[96];
  size_t plen;
  int prefix; /* pattern ended in '*' (plen excludes it) */
  int32_t priority;
  struct slot *slot;
};

static int route_matches(const struct route *rt, const char *category) {
  if (rt->prefix)
    return strncmp(category, rt->pattern, rt->plen) == 0;
  return strcmp(category, rt->pattern) == 0;
}

/* only: deliver to that plugin alone, whatever it subscribes to (replay). */
int router_route(struct plugin_host *h, struct job *job, const char *only) {
  if (!h || (!h->nroutes && !only))
    return 0;
  struct job_route *r = h->route_pool;
  if (r && r->cap < (int)h->nslots) {
    /* Slots were added by a reload since this one was made. */
    h->route_pool = r->next_free;
    free(r);
    r = NULL;
  }
  if (r) {
    h->route_pool = r->next_free;
  } else {
    r = malloc(sizeof *r + h->nslots * sizeof r->subs[0]);
    if (!r)
      return -1;
    r->cap = (int)h->nslots;
  }
  r->h = h;
  r->nsubs = 0;
  const char *cat = job->msg->category;
  if (only) {
    struct slot *sl = loader_slot_find(h, only);
    if (sl && atomic_load(&sl->inst) && r->cap > 0)
      r->subs[r->nsubs++] = sl;
  }
  /* Routes are sorted by priority; a slot matching through several
   * patterns is delivered once, at its first (highest) position. */
  for (size_t i = 0; !only && i < h->nroutes; i++) {
    if (!route_matches(&h->routes[i], cat))
      continue;
    struct slot *sl = h->routes[i].slot;
    int dup = 0;
    for (int k = 0; k < r->nsubs; k++)
      dup |= r->subs[k] == sl;
    if (!dup && r->nsubs < r->cap)
      r->subs[r->nsubs++] = sl;
  }
  if (!r->nsubs) {
    r->next_free = h->route_pool;
    h->route_pool = r;
    return 0;
  }
  const struct message *m = job->msg;
  r->view = (struct blazebot_message){
      .size = sizeof(struct blazebot_message),
      .attempt = 1,
      .message_id = m->message_id,
      .conversation_id = m->conversation_id,
      .user_id = m->user_id,
      .representative_id = m->representative_id,
      .quote_message_id = m->quote_message_id,
      .session_id = m->session_id,
      .category = m->category,
      .source = m->source,
      .status = m->status,
      .created_at = m->created_at,
      .updated_at = m->updated_at,
      .data = m->data,
      .data_len = m->data_len,
      .raw_json = m->raw_json,
      .raw_json_len = m->raw_json_len,
  };
  r->idx = 0;
  r->attempt = 1;
  job->route = r;
  job->item.run = exec_deliver;
  dispatch_post(h->disp, r->subs[0]->strand, &job->item);
  return 1;
}

void router_job_done(struct plugin_host *h, struct job *job) {
  struct job_route *r = job->route;
  if (!r || !h)
    return;
  job->route = NULL;
  r->next_free = h->route_pool;
  h->route_pool = r;
}

/* Rebuilds the routing table from the slots' current instances. I/O thread. */
static int rebuild_routes(struct plugin_host *h) {
  size_t n = 0;
  for (struct slot *sl = h->slots; sl; sl = sl->next) {
    struct instance *in = atomic_load(&sl->inst);
    if (in)
      n += (size_t)in->nsubs;
  }
  struct route *nr = calloc(n ? n : 1, sizeof *nr);
  if (!nr)
    return -1;
  size_t k = 0;
  for (struct slot *sl = h->slots; sl; sl = sl->next) {
    struct instance *in = atomic_load(&sl->inst);
    if (!in)
      continue;
    if (!in->nsubs)
      log_warn("plugin %s subscribes to no category; it will receive no messages",
               in->name);
    for (int i = 0; i < in->nsubs; i++) {
      struct route *rt = &nr[k++];
      snprintf(rt->pattern, sizeof rt->pattern, "%s", in->subs[i].pat);
      char *star = strchr(rt->pattern, '*');
      rt->prefix = star != NULL;
      if (star)
        *star = 0;
      rt->plen = strlen(rt->pattern);
      rt->priority = in->subs[i].prio;
      rt->slot = sl;
    }
  }
  free(h->routes);
  h->routes = nr;
  h->nroutes = n;
  return 0;
}

static int route_cmp(const void *a, const void *b) {
  const struct route *x = a, *y = b;
  if (x->priority != y->priority)
    return x->priority > y->priority ? -1 : 1;
  return x->slot->order - y->slot->order;
}

void router_commit(struct plugin_host *h) {
  if (rebuild_routes(h) == 0)
    qsort(h->routes, h->nroutes, sizeof *h->routes, route_cmp);
  else
    log_error("plugins: out of memory rebuilding the routing table; keeping the old one");
}
