# SPDX-License-Identifier: MIT
# The nats plugin end to end (tests/nats/test_nats.c), included from
# tests/CMakeLists.txt after integration.cmake (it uses the harness). Each
# scenario is one ctest test, nats.<scenario>: it starts its own nats-server
# (on free loopback ports, with a store folder of its own), the simulator,
# the daemon with plugins/nats, and the example worker of
# examples/nats-worker, built here from the same source as out of tree.
# Without libnats the plugin is not built: nats.available then fails under
# CI=true (CI installs libnats-dev) and is skipped elsewhere; without
# nats-server the scenarios do the same.
if(NOT TARGET blazebot_harness)
  message(FATAL_ERROR "nats.cmake must be included after integration.cmake")
endif()

if(NOT TARGET nats)
  add_test(NAME nats.available COMMAND sh -c
    "echo 'libnats was not found at configure time: the nats plugin and its tests were not built' >&2; if [ \"$CI\" = true ]; then exit 1; fi; exit 77")
  set_tests_properties(nats.available PROPERTIES SKIP_RETURN_CODE 77)
  return()
endif()

if(TARGET PkgConfig::NATS)
  set(BLAZEBOT_TEST_NATS_LIB PkgConfig::NATS)
else()
  set(BLAZEBOT_TEST_NATS_LIB blazebot_libnats)
endif()

add_executable(nats-worker ${PROJECT_SOURCE_DIR}/examples/nats-worker/worker.c)
set_target_properties(nats-worker PROPERTIES C_STANDARD 99 C_EXTENSIONS OFF)
target_link_libraries(nats-worker PRIVATE ${BLAZEBOT_TEST_NATS_LIB} PkgConfig::JANSSON)
blazebot_warnings(nats-worker)

add_executable(itest_nats ${CMAKE_CURRENT_LIST_DIR}/test_nats.c)
target_link_libraries(itest_nats PRIVATE blazebot_harness blazebot_core
  ${BLAZEBOT_TEST_NATS_LIB})
blazebot_warnings(itest_nats)
target_compile_definitions(itest_nats PRIVATE NATS_SO="$<TARGET_FILE:nats>"
  NATS_WORKER="$<TARGET_FILE:nats-worker>"
  NODE_WORKER_DIR="${PROJECT_SOURCE_DIR}/examples/nats-worker/node")
add_dependencies(itest_nats blazebot blazebot-sim nats nats-worker)

#   e2e      1 then 3 workers, 13,000 messages each answered once; throughput;
#            malformed and refused replies terminated
#   worker   a worker SIGKILLed mid-stream: its messages go to the others
#   restart  nats-server SIGKILLed and restarted mid-stream: nothing lost
#   daemon   the daemon SIGKILLed and restarted: no duplicate in the stream
#   cluster  3 nodes, replicas = 3, the stream leader SIGKILLed mid-stream
#   reload   SIGHUP with a changed [plugin.nats]: the old instance stops, the
#            new one connects, nothing lost
#   auth     token, TLS (ca_file, tls:// URLs) and creds_file (operator mode),
#            each with messages end to end and a setting that cannot connect
#            (logged, nothing acked nor lost); the token never logged
foreach(scenario e2e worker restart daemon cluster reload auth)
  add_test(NAME nats.${scenario} COMMAND itest_nats ${scenario})
  set_tests_properties(nats.${scenario} PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77
    ENVIRONMENT "BLAZEBOT_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/tmp;BLAZEBOT_BIN=$<TARGET_FILE:blazebot>;BLAZEBOT_SIM_BIN=$<TARGET_FILE:blazebot-sim>")
endforeach()
# It prints the throughput figures of the README: nothing else runs meanwhile.
set_tests_properties(nats.e2e PROPERTIES RUN_SERIAL TRUE)

# The Node worker of examples/nats-worker/node beside a C worker: npm ci of its
# locked dependencies (nats.js) into the test's folder first, from the npm
# registry or npm's cache. Skipped without node and npm, failed when CI=true.
add_test(NAME nats.node COMMAND itest_nats node)
set_tests_properties(nats.node PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77
  ENVIRONMENT "BLAZEBOT_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/tmp;BLAZEBOT_BIN=$<TARGET_FILE:blazebot>;BLAZEBOT_SIM_BIN=$<TARGET_FILE:blazebot-sim>")
