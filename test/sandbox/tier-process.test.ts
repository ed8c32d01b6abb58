import { tierSuite } from "./tier-suite.js";

tierSuite("process");
