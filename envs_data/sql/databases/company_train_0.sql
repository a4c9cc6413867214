BEGIN TRANSACTION;
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  department TEXT NOT NULL,
  city TEXT NOT NULL,
  salary INTEGER NOT NULL,
  hire_year INTEGER NOT NULL
);
INSERT INTO employees VALUES(1,'Ines Xu','Support','Denver',33500,2019);
INSERT INTO employees VALUES(2,'Rosa Walsh','Sales','Oslo',107500,2021);
INSERT INTO employees VALUES(3,'Wen Silva','Support','Lisbon',133000,2012);
INSERT INTO employees VALUES(4,'Dario Baker','Engineering','Lisbon',103000,2019);
INSERT INTO employees VALUES(5,'Ines Castro','Marketing','Denver',142500,2010);
INSERT INTO employees VALUES(6,'Alma Xu','Support','Nairobi',80000,2015);
INSERT INTO employees VALUES(7,'Ada Ibsen','Sales','Oslo',45000,2022);
INSERT INTO employees VALUES(8,'Tess Nakamura','Engineering','Osaka',49500,2005);
INSERT INTO employees VALUES(9,'Umar Nakamura','Support','Lisbon',68000,2011);
INSERT INTO employees VALUES(10,'Cleo Lindqvist','Sales','Denver',63000,2019);
INSERT INTO employees VALUES(11,'Vera Ueda','Finance','Oslo',64500,2022);
INSERT INTO employees VALUES(12,'Hamza Xu','Finance','Osaka',68500,2019);
INSERT INTO employees VALUES(13,'Umar Crane','Engineering','Nairobi',99500,2018);
INSERT INTO employees VALUES(14,'Dev Ueda','Sales','Osaka',80000,2011);
INSERT INTO employees VALUES(15,'Bruno Fischer','Sales','Lima',76500,2023);
INSERT INTO employees VALUES(16,'Hamza Ueda','Engineering','Lima',140000,2005);
INSERT INTO employees VALUES(17,'Ines Varga','Support','Lima',38500,2005);
INSERT INTO employees VALUES(18,'Ines Kaplan','Legal','Osaka',75500,2011);
INSERT INTO employees VALUES(19,'Carla Garza','Legal','Oslo',72000,2018);
INSERT INTO employees VALUES(20,'Olga Kaplan','Sales','Lisbon',140500,2020);
INSERT INTO employees VALUES(21,'Rosa Castro','Finance','Denver',64500,2017);
INSERT INTO employees VALUES(22,'Pavel Okafor','Support','Denver',79000,2023);
INSERT INTO employees VALUES(23,'Ines Fischer','Engineering','Lima',46000,2005);
INSERT INTO employees VALUES(24,'Joel Moreau','Sales','Oslo',35000,2015);
INSERT INTO employees VALUES(25,'Pavel Haddad','Support','Denver',97500,2019);
INSERT INTO employees VALUES(26,'Nils Abbott','Finance','Oslo',81000,2006);
INSERT INTO employees VALUES(27,'Iris Moreau','Marketing','Lima',94000,2017);
INSERT INTO employees VALUES(28,'Umar Eklund','Legal','Lima',88500,2023);
INSERT INTO employees VALUES(29,'Dario Rahman','Support','Osaka',102500,2013);
INSERT INTO employees VALUES(30,'Umar Dalton','Support','Nairobi',44000,2010);
INSERT INTO employees VALUES(31,'Fynn Quintero','Marketing','Oslo',111000,2022);
INSERT INTO employees VALUES(32,'Gemma Tanaka','Support','Lima',99000,2017);
INSERT INTO employees VALUES(33,'Cleo Quintero','Marketing','Oslo',113500,2023);
INSERT INTO employees VALUES(34,'Olga Rahman','Sales','Denver',85500,2014);
INSERT INTO employees VALUES(35,'Nils Bishop','Finance','Nairobi',30000,2020);
INSERT INTO employees VALUES(36,'Ada Jovanovic','Engineering','Nairobi',139000,2014);
INSERT INTO employees VALUES(37,'Olga Walsh','Engineering','Lisbon',126000,2021);
INSERT INTO employees VALUES(38,'Yara Duarte','Marketing','Lisbon',82000,2016);
INSERT INTO employees VALUES(39,'Luis Kaplan','Legal','Osaka',148500,2016);
INSERT INTO employees VALUES(40,'Umar Duarte','Legal','Nairobi',123000,2017);
INSERT INTO employees VALUES(41,'Olga Zeller','Engineering','Denver',144500,2005);
INSERT INTO employees VALUES(42,'Carla Ibsen','Sales','Lisbon',109500,2021);
INSERT INTO employees VALUES(43,'Dario Varga','Legal','Lima',113000,2018);
INSERT INTO employees VALUES(44,'Boris Bishop','Sales','Osaka',73000,2012);
INSERT INTO employees VALUES(45,'Ximena Eklund','Marketing','Denver',120500,2016);
INSERT INTO employees VALUES(46,'Olga Quintero','Marketing','Oslo',70000,2015);
INSERT INTO employees VALUES(47,'Ines Yilmaz','Sales','Denver',73500,2013);
INSERT INTO employees VALUES(48,'Umar Abbott','Legal','Denver',142500,2009);
INSERT INTO employees VALUES(49,'Farid Duarte','Finance','Nairobi',80500,2012);
INSERT INTO employees VALUES(50,'Ines Zeller','Support','Lisbon',59000,2013);
INSERT INTO employees VALUES(51,'Elena Baker','Finance','Lima',143500,2009);
INSERT INTO employees VALUES(52,'Wen Rahman','Marketing','Oslo',65000,2006);
INSERT INTO employees VALUES(53,'Dev Nakamura','Sales','Oslo',76000,2015);
INSERT INTO employees VALUES(54,'Elena Quintero','Legal','Lima',44500,2019);
INSERT INTO employees VALUES(55,'Hiro Petrov','Legal','Lisbon',65000,2009);
INSERT INTO employees VALUES(56,'Hiro Rahman','Finance','Oslo',59000,2015);
INSERT INTO employees VALUES(57,'Dev Garza','Sales','Lisbon',63500,2020);
INSERT INTO employees VALUES(58,'Ines Dalton','Finance','Denver',83500,2016);
INSERT INTO employees VALUES(59,'Kira Abbott','Support','Nairobi',53500,2007);
INSERT INTO employees VALUES(60,'Zane Walsh','Sales','Oslo',81500,2013);
COMMIT;
