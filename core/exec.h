/* SPDX-License-Identifier: MIT */
/*
 * exec: delivers a routed job on the per-plugin strands. On the strand of
 * the job's current subscriber it calls on_message on the slot's instance of
 * the moment, then: PASS or an error posts the job to the next subscriber's
 * strand, HANDLED ends the list, RETRY hands the job back to the daemon with
 * a retry time (0.5 s doubling to 30 s), and after max_attempts the message
 * is given up on, written to the dead-letter file first. A plugin may hold
 * the message (plugin.h: hold): the delivery then ends when the last hold
 * is released, with the strongest result (RETRY, an error, HANDLED, PASS),
 * on the same strand. Runs on workers;
 * jobs go back to the I/O thread through dispatch_complete.
 */
#ifndef BLAZEBOT_EXEC_H
#define BLAZEBOT_EXEC_H

struct dispatch_item;

/* The run function of a routed job's item (job->item, job->route set). */
void exec_deliver(struct dispatch_item *it);

struct job;
/* Host mutex held. Folds result into the delivery's outcome and drops one
 * of its holds; returns 1 when that was the last (the caller then calls
 * exec_resume_post, after unlocking). */
int exec_hold_drop_locked(struct job *job, int result);
/* Any thread: the last hold on job was released: its delivery ends, with
 * its outcome, on the subscriber's strand. */
void exec_resume_post(struct job *job);

#endif
