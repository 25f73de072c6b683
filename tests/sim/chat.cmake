# SPDX-License-Identifier: MIT
# sim.chat: blazebot-sim's --chat and --interactive modes against the real
# daemon with the real echo, commands and welcome plugins (the README demo), checked
# by test_chat.sh through the transcript. Included from tests/CMakeLists.txt.
add_test(NAME sim.chat
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_chat.sh $<TARGET_FILE:blazebot>
    $<TARGET_FILE:blazebot-sim> $<TARGET_FILE:echo> $<TARGET_FILE:commands>
    $<TARGET_FILE:welcome>)
set_tests_properties(sim.chat PROPERTIES TIMEOUT 180
  ENVIRONMENT "BLAZEBOT_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/tmp")
