import { pluginHostTest } from "./dev-templates.js";

pluginHostTest();
