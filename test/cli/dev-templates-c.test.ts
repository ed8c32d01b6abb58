import { pluginHostTest, templateTests } from "./dev-templates.js";

templateTests(["reactor-c", "wagi-cpp", "plugin-c"]);
pluginHostTest();
