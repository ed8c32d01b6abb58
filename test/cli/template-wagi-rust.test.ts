import { templateTests } from "./dev-templates.js";

templateTests(["wagi-rust"]);
