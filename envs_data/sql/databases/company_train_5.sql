BEGIN TRANSACTION;
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  department TEXT NOT NULL,
  city TEXT NOT NULL,
  salary INTEGER NOT NULL,
  hire_year INTEGER NOT NULL
);
INSERT INTO employees VALUES(1,'Rosa Eklund','Support','Nairobi',107000,2007);
INSERT INTO employees VALUES(2,'Hiro Crane','Finance','Nairobi',95500,2012);
INSERT INTO employees VALUES(3,'Luis Garza','Support','Lima',72500,2013);
INSERT INTO employees VALUES(4,'Yara Quintero','Support','Osaka',86500,2008);
INSERT INTO employees VALUES(5,'Joel Abbott','Support','Lisbon',113000,2018);
INSERT INTO employees VALUES(6,'Gemma Rahman','Sales','Denver',131500,2014);
INSERT INTO employees VALUES(7,'Carla Xu','Support','Lima',37000,2006);
INSERT INTO employees VALUES(8,'Maya Quintero','Marketing','Oslo',42500,2012);
INSERT INTO employees VALUES(9,'Cleo Silva','Marketing','Nairobi',136000,2006);
INSERT INTO employees VALUES(10,'Nils Varga','Marketing','Nairobi',150000,2012);
INSERT INTO employees VALUES(11,'Sami Jovanovic','Support','Oslo',70500,2007);
INSERT INTO employees VALUES(12,'Ada Tanaka','Legal','Lisbon',37000,2008);
INSERT INTO employees VALUES(13,'Ximena Bishop','Marketing','Osaka',79500,2017);
INSERT INTO employees VALUES(14,'Ada Castro','Finance','Denver',75500,2006);
INSERT INTO employees VALUES(15,'Vera Walsh','Engineering','Osaka',41500,2022);
INSERT INTO employees VALUES(16,'Wen Nakamura','Marketing','Oslo',82500,2015);
INSERT INTO employees VALUES(17,'Greta Walsh','Sales','Osaka',147500,2018);
INSERT INTO employees VALUES(18,'Nils Dalton','Support','Oslo',75500,2019);
INSERT INTO employees VALUES(19,'Greta Eklund','Finance','Oslo',75000,2023);
INSERT INTO employees VALUES(20,'Alma Dalton','Support','Lisbon',116500,2023);
INSERT INTO employees VALUES(21,'Carla Zeller','Engineering','Nairobi',39500,2012);
INSERT INTO employees VALUES(22,'Alma Nakamura','Sales','Nairobi',52500,2018);
INSERT INTO employees VALUES(23,'Tess Silva','Finance','Oslo',143000,2014);
INSERT INTO employees VALUES(24,'Quinn Xu','Support','Lima',108500,2008);
INSERT INTO employees VALUES(25,'Ines Silva','Sales','Osaka',131500,2006);
INSERT INTO employees VALUES(26,'Greta Xu','Sales','Oslo',118500,2006);
INSERT INTO employees VALUES(27,'Ximena Silva','Legal','Osaka',47000,2011);
INSERT INTO employees VALUES(28,'Olga Ibsen','Finance','Oslo',132000,2006);
INSERT INTO employees VALUES(29,'Maya Bishop','Engineering','Oslo',101500,2005);
INSERT INTO employees VALUES(30,'Joel Okafor','Engineering','Lisbon',49500,2022);
INSERT INTO employees VALUES(31,'Cleo Eklund','Sales','Oslo',81000,2022);
INSERT INTO employees VALUES(32,'Luis Baker','Legal','Lima',123500,2020);
INSERT INTO employees VALUES(33,'Dario Zeller','Legal','Nairobi',31000,2019);
INSERT INTO employees VALUES(34,'Bruno Jovanovic','Support','Osaka',64500,2005);
INSERT INTO employees VALUES(35,'Sami Walsh','Finance','Lima',123000,2010);
INSERT INTO employees VALUES(36,'Farid Yilmaz','Finance','Oslo',39000,2011);
INSERT INTO employees VALUES(37,'Ada Eklund','Finance','Lisbon',71500,2017);
INSERT INTO employees VALUES(38,'Edith Zeller','Sales','Lima',80500,2010);
INSERT INTO employees VALUES(39,'Umar Eklund','Finance','Nairobi',123000,2022);
INSERT INTO employees VALUES(40,'Sami Zeller','Legal','Osaka',69500,2010);
INSERT INTO employees VALUES(41,'Zane Abbott','Finance','Nairobi',64000,2021);
INSERT INTO employees VALUES(42,'Cleo Rahman','Sales','Osaka',137000,2007);
INSERT INTO employees VALUES(43,'Carla Garza','Marketing','Lima',31000,2022);
INSERT INTO employees VALUES(44,'Carla Arendt','Finance','Denver',123000,2017);
INSERT INTO employees VALUES(45,'Nils Nakamura','Support','Osaka',111000,2020);
INSERT INTO employees VALUES(46,'Ada Dalton','Marketing','Osaka',94500,2021);
INSERT INTO employees VALUES(47,'Jamal Arendt','Engineering','Lisbon',145500,2016);
INSERT INTO employees VALUES(48,'Farid Arendt','Engineering','Oslo',69000,2013);
INSERT INTO employees VALUES(49,'Nils Walsh','Finance','Osaka',65500,2014);
INSERT INTO employees VALUES(50,'Iris Arendt','Engineering','Lisbon',60500,2009);
INSERT INTO employees VALUES(51,'Alma Duarte','Support','Osaka',56000,2022);
INSERT INTO employees VALUES(52,'Boris Xu','Support','Lima',93000,2020);
INSERT INTO employees VALUES(53,'Vera Quintero','Sales','Nairobi',114000,2022);
INSERT INTO employees VALUES(54,'Hiro Lindqvist','Finance','Lisbon',32000,2008);
INSERT INTO employees VALUES(55,'Greta Arendt','Legal','Oslo',103500,2007);
INSERT INTO employees VALUES(56,'Quinn Petrov','Support','Oslo',49000,2018);
INSERT INTO employees VALUES(57,'Farid Varga','Support','Lima',113000,2014);
INSERT INTO employees VALUES(58,'Maya Haddad','Engineering','Lima',113500,2011);
INSERT INTO employees VALUES(59,'Quinn Castro','Marketing','Nairobi',146000,2023);
INSERT INTO employees VALUES(60,'Hamza Fischer','Finance','Denver',65500,2009);
COMMIT;
