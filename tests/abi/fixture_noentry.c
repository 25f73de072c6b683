/* SPDX-License-Identifier: MIT */
/*
 * fixture_noentry: a valid shared object that exports a function, but not
 * blazebot_plugin_v1 (an author who forgot BLAZEBOT_PLUGIN, or some other
 * library dropped into plugin_dir). The loader must say that the entry
 * symbol is missing rather than crash or report a generic load error.
 */
int fixture_not_a_plugin(void);

int fixture_not_a_plugin(void) {
  return 42;
}
