# SPDX-License-Identifier: MIT
# Plugins under the real daemon, included from tests/CMakeLists.txt after
# integration.cmake (it uses the harness). The probe plugin
# (tests/abi/probe.c, scripted from its ini section) is built once per name
# with blazebot_add_plugin(), so each copy passes the export check and has
# its own descriptor name. integration.plugins_routing checks matching,
# priorities, HANDLED, RETRY and acks; integration.plugins_e2e.* runs the
# echo plugin on 10,000 messages, a slow probe under back pressure, and the
# example plugin built out of tree against an installed SDK, and checks the
# per-plugin counters of the exit stats.
if(NOT TARGET blazebot_harness)
  message(FATAL_ERROR "plugins_e2e.cmake must be included after integration.cmake")
endif()
set(BLAZEBOT_PE2E_DIR ${CMAKE_CURRENT_LIST_DIR})

set(BLAZEBOT_PROBES "")
foreach(p a b c d e f g)
  blazebot_add_plugin(probe_${p} NO_INSTALL ${PROJECT_SOURCE_DIR}/tests/abi/probe.c)
  target_compile_definitions(probe_${p} PRIVATE PROBE_NAME="probe_${p}")
  set_target_properties(probe_${p} PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/probes)
  list(APPEND BLAZEBOT_PROBES probe_${p})
endforeach()

set(BLAZEBOT_PE2E_ENV
  "BLAZEBOT_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/tmp;BLAZEBOT_BIN=$<TARGET_FILE:blazebot>;BLAZEBOT_SIM_BIN=$<TARGET_FILE:blazebot-sim>")

add_executable(itest_plugins_routing ${BLAZEBOT_PE2E_DIR}/test_plugins_routing.c)
target_link_libraries(itest_plugins_routing PRIVATE blazebot_harness blazebot_core)
blazebot_warnings(itest_plugins_routing)
target_compile_definitions(itest_plugins_routing PRIVATE
  PROBE_DIR="$<TARGET_FILE_DIR:probe_a>")
add_dependencies(itest_plugins_routing blazebot blazebot-sim ${BLAZEBOT_PROBES})
add_test(NAME integration.plugins_routing COMMAND itest_plugins_routing)
set_tests_properties(integration.plugins_routing PROPERTIES TIMEOUT 600
  ENVIRONMENT "${BLAZEBOT_PE2E_ENV}")

# The echo plugin compiled against the frozen ABI 1.0 header (tests/abi/v1.0):
# a plugin built before minor 1, as this host must keep running it.
blazebot_add_plugin(echo_abi10 NO_INSTALL ${PROJECT_SOURCE_DIR}/plugins/echo/echo.c)
target_include_directories(echo_abi10 BEFORE PRIVATE ${PROJECT_SOURCE_DIR}/tests/abi/v1.0)
set_target_properties(echo_abi10 PROPERTIES
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/abi10)

add_executable(itest_plugins_e2e ${BLAZEBOT_PE2E_DIR}/test_plugins_e2e.c)
target_link_libraries(itest_plugins_e2e PRIVATE blazebot_harness blazebot_core)
blazebot_warnings(itest_plugins_e2e)
target_compile_definitions(itest_plugins_e2e PRIVATE
  ECHO_SO="$<TARGET_FILE:echo>"
  ECHO_ABI10_SO="$<TARGET_FILE:echo_abi10>"
  PROBE_DIR="$<TARGET_FILE_DIR:probe_a>"
  BLAZEBOT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  BLAZEBOT_BUILD_DIR="${CMAKE_BINARY_DIR}"
  BLAZEBOT_CMAKE="${CMAKE_COMMAND}")
target_link_libraries(itest_plugins_e2e PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(itest_plugins_e2e blazebot blazebot-sim echo echo_abi10 ${BLAZEBOT_PROBES})
foreach(mode echo abi10 slow outoftree stats)
  add_test(NAME integration.plugins_e2e.${mode} COMMAND itest_plugins_e2e ${mode})
  set_tests_properties(integration.plugins_e2e.${mode} PROPERTIES TIMEOUT 600
    ENVIRONMENT "${BLAZEBOT_PE2E_ENV}")
endforeach()
# It installs the whole build tree into a scratch prefix, like plugins.outoftree.
set_tests_properties(integration.plugins_e2e.outoftree PROPERTIES RUN_SERIAL TRUE)

# Daemon-level tests that load the echo plugin or the probe from their own
# plugin_dir: blazebot_pe2e_test(NAME [TIMEOUT]) builds test_NAME.c with
# ECHO_SO and PROBE_DIR defined.
function(blazebot_pe2e_test name)
  set(timeout 600)
  if(ARGC GREATER 1)
    set(timeout ${ARGV1})
  endif()
  add_executable(itest_${name} ${BLAZEBOT_PE2E_DIR}/test_${name}.c)
  target_link_libraries(itest_${name} PRIVATE blazebot_harness)
  blazebot_warnings(itest_${name})
  target_compile_definitions(itest_${name} PRIVATE ECHO_SO="$<TARGET_FILE:echo>"
    PROBE_DIR="$<TARGET_FILE_DIR:probe_a>" BLAZEBOT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_dependencies(itest_${name} blazebot blazebot-sim echo ${BLAZEBOT_PROBES})
  add_test(NAME integration.${name} COMMAND itest_${name})
  set_tests_properties(integration.${name} PROPERTIES TIMEOUT ${timeout}
    ENVIRONMENT "${BLAZEBOT_PE2E_ENV}")
endfunction()

# SIGKILL mid-stream, then a restart: nobody answered twice (derived ids).
blazebot_pe2e_test(crash)
# Orderly shutdown with a slow plugin: graceful, a second SIGTERM, a fatal 401.
blazebot_pe2e_test(shutdown)
# Back pressure without shedding: 100,000 pending, a 1 ms plugin, one connection.
blazebot_pe2e_test(backpressure 1500)
if(BLAZEBOT_SANITIZE OR BLAZEBOT_TSAN)
  # Shadow memory and allocator caches count in RSS under the sanitizers
  # (TSan: about 78 MiB at the peak).
  target_compile_definitions(itest_backpressure PRIVATE BP_RSS_LIMIT_KB=262144)
endif()
# Dead letters: give-ups recorded before the ack, max_attempts = 0, --replay.
blazebot_pe2e_test(deadletter)
# Plugin API 1.1 through the probe: holds, state_dir, timer_at.
blazebot_pe2e_test(api11)
# A whole session at log_level = debug: JSON lines, every step of every
# message by id, and no key material, token or payload anywhere.
blazebot_pe2e_test(logs)
# metrics_listen: /metrics (Prometheus text) and /healthz of a real session.
blazebot_pe2e_test(metrics)
# Key material nowhere a core dump, a scraper or a log would find it: the
# daemon's memory read through /proc/PID/mem, for each keystore generation.
blazebot_pe2e_test(secrets)
target_link_libraries(itest_secrets PRIVATE blazebot_core) # hex and base64 decoding
# send_rate_per_min: a limit holds, and 0 (reloaded) lifts it with a warning.
blazebot_pe2e_test(rate)
